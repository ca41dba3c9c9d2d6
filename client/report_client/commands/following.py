"""What create --wait, reexport --wait and schedules fire --wait share: follow the job, then fetch and
verify its file."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from report_client.commands import Context
from report_client.downloads import Downloaded, Expected, check_destination, save_verified, target_path
from report_client.errors import JobUnsuccessful, UsageError
from report_client.job_parameters import positive_float
from report_client.waiting import follow

DEFAULT_INTERVAL_SEC = 1.0


def add_wait_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("waiting")
    group.add_argument(
        "--wait", action="store_true", help="follow the job with a progress bar, then download and verify its file"
    )
    group.add_argument(
        "-o", "--output-file", dest="output_file", metavar="PATH", help="with --wait: where to save the file"
    )
    group.add_argument("--no-download", action="store_true", help="with --wait: only wait, do not download")
    group.add_argument(
        "--interval",
        type=positive_float,
        default=DEFAULT_INTERVAL_SEC,
        metavar="SEC",
        help=f"seconds between polls [{DEFAULT_INTERVAL_SEC:g}]",
    )


def check_wait_options(args: argparse.Namespace) -> None:
    """Before anything is sent: the options go together, and the file can be saved where asked."""
    if args.output_file is not None and not args.wait:
        raise UsageError("-o/--output-file is only used with --wait; nothing was sent", hint="add --wait")
    if args.output_file is not None and args.no_download:
        raise UsageError("-o/--output-file and --no-download exclude each other; nothing was sent")
    if args.no_download and not args.wait:
        raise UsageError("--no-download is only used with --wait; nothing was sent", hint="add --wait")
    if args.wait and not args.no_download:
        check_destination(args.output_file)


def download(ctx: Context, job: dict[str, Any], output: str | None) -> Downloaded:
    """The job's file, saved under `output` once its size and sha256 match the job's."""
    if job.get("status") in ("failed", "cancelled"):
        raise JobUnsuccessful(f"job {job['id']} {job['status']}: it has no file{_reason(job)}", job)
    # The job first: its sha256 and size are what the file is checked against, whatever the link serves.
    expected = Expected.of_job(job)
    link = ctx.api.download_link(job["id"])
    return save_verified(ctx.api.stream_file(link["download_url"]), target_path(output, expected.file_name), expected)


def wait_then_download(
    ctx: Context, job_id: str, args: argparse.Namespace, cancel: Callable[[], str], label: str | None = None
) -> tuple[dict[str, Any], Downloaded | None]:
    """The ended job and, when it succeeded and a download was not declined, its verified file.
    A job that failed or was cancelled raises JobUnsuccessful (exit 3) with the job as its document."""
    job = follow(ctx.api, ctx.out, job_id, interval=args.interval, cancel=cancel, label=label)
    if job.get("status") != "succeeded":
        raise JobUnsuccessful(f"job {job_id} {job.get('status')}{_reason(job)}", {"job": job, "download": None})
    if args.no_download:
        return job, None
    return job, download(ctx, job, args.output_file)


def _reason(job: dict[str, Any]) -> str:
    if job.get("error_code"):
        return f": {job['error_code']}: {job.get('error_message') or ''}".rstrip(": ")
    return ""
