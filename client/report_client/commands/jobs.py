"""Jobs: create (and follow), list, show, cancel, download."""

from __future__ import annotations

import argparse
import shlex
import uuid
from typing import Any

from rich.console import Console
from rich.text import Text

from report_client.commands import Context, Subparsers, add_command
from report_client.commands.following import add_wait_options, check_wait_options, download, wait_then_download
from report_client.downloads import Downloaded, check_destination
from report_client.job_parameters import (
    add_filter_option,
    add_format_options,
    add_scope_options,
    date_argument,
    identifier,
    job_body,
)
from report_client.output import fields_table, list_table, moment, status_text, text

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def register(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    create = add_command(commands, common, "create", run_create, "create a report job (--wait: follow and download)")
    create.add_argument(
        "--type",
        dest="job_type",
        required=True,
        type=str.upper,
        metavar="JOB_TYPE",
        help="the report type, e.g. FEED_INTAKE_EXPORT (see: reports types)",
    )
    add_format_options(create, defaults=True)
    add_scope_options(create)
    create.add_argument("--from", dest="start_date", type=date_argument, metavar="YYYY-MM-DD", help="first day")
    create.add_argument("--to", dest="end_date", type=date_argument, metavar="YYYY-MM-DD", help="last day")
    add_filter_option(create)
    create.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="makes a retried create answer the job it made; a new uuid4 unless given (it is printed)",
    )
    add_wait_options(create)

    listing = add_command(commands, common, "list", run_list, "list jobs, newest first")
    listing.add_argument("--status", choices=STATUSES, help="only jobs in this status")
    listing.add_argument("--type", dest="job_type", type=str.upper, metavar="JOB_TYPE", help="only jobs of this type")
    expired = listing.add_mutually_exclusive_group()
    expired.add_argument("--expired", dest="expired", action="store_const", const=True, help="only expired files")
    expired.add_argument("--not-expired", dest="expired", action="store_const", const=False, help="only live files")
    add_paging_options(listing, default_limit=20)

    show = add_command(commands, common, "show", run_show, "show one job")
    show.add_argument("job_id", metavar="JOB", type=identifier)

    cancel = add_command(commands, common, "cancel", run_cancel, "cancel a queued or running job")
    cancel.add_argument("job_id", metavar="JOB", type=identifier)

    fetch = add_command(commands, common, "download", run_download, "download a report's file and verify it")
    fetch.add_argument("job_id", metavar="JOB", type=identifier)
    fetch.add_argument(
        "-o",
        "--output-file",
        dest="output_file",
        metavar="PATH",
        help="file or directory to save to [the report's file name, here]",
    )


def add_paging_options(parser: argparse.ArgumentParser, *, default_limit: int) -> None:
    parser.add_argument("--limit", type=_page_size, default=default_limit, help=f"page size, 1-100 [{default_limit}]")
    paging = parser.add_mutually_exclusive_group()
    paging.add_argument("--cursor", metavar="CURSOR", help="the next_cursor of the previous page")
    paging.add_argument("--all", action="store_true", help="read every page")


def _page_size(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise argparse.ArgumentTypeError(f"{value!r} is not a page size from 1 to 100")
    return int(value)


def read_pages(fetch: Any, args: argparse.Namespace, **query: Any) -> dict[str, Any]:
    """One page (from --cursor), or with --all every page, joined; next_cursor is where to go on."""
    page = fetch(limit=args.limit, next_cursor=args.cursor, **query)
    if not args.all:
        return page
    items = list(page.get("items", []))
    while page.get("next_cursor"):
        page = fetch(limit=args.limit, next_cursor=page["next_cursor"], **query)
        items.extend(page.get("items", []))
    return {**page, "items": items, "next_cursor": None}


def more_hint(ctx: Context, page: dict[str, Any]) -> None:
    if page.get("next_cursor") and not ctx.out.json:
        ctx.out.note(f"more: --cursor {page['next_cursor']}  (or --all)")


# Handlers


def run_create(ctx: Context, args: argparse.Namespace) -> int:
    args.idempotency_key = args.idempotency_key or str(uuid.uuid4())
    body = job_body(args)
    check_wait_options(args)
    # Before sending: if the answer is lost, the same key makes the retry answer this job, not a second one.
    ctx.out.note(
        f"idempotency key: {args.idempotency_key}  (retry with --idempotency-key {shlex.quote(args.idempotency_key)})"
    )
    job, replayed = ctx.api.create_job(body)
    if replayed:
        ctx.out.note(f"the key was used before: this is the job it made then ({job['id']})")
    else:
        ctx.out.note(f"created job {job['id']}")
    if not args.wait:
        ctx.out.result(job, lambda console: render_job(console, job))
        return 0
    final, downloaded = wait_then_download(ctx, job["id"], args, cancel=lambda: cancel_message(ctx, job["id"]))
    document = {"job": final, "download": downloaded.document() if downloaded else None}
    ctx.out.result(document, lambda console: render_finished(console, final, downloaded))
    return 0


def cancel_message(ctx: Context, job_id: str) -> str:
    _, completed = ctx.api.cancel_job(job_id)
    if completed:
        return f"job {job_id} cancelled"
    return f"job {job_id}: cancel requested; it stops at its next checkpoint"


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    page = read_pages(ctx.api.jobs, args, status=args.status, job_type=args.job_type, expired=args.expired)
    ctx.out.result(page, lambda console: render_jobs(console, page["items"]))
    more_hint(ctx, page)
    return 0


def run_show(ctx: Context, args: argparse.Namespace) -> int:
    job = ctx.api.job(args.job_id)
    ctx.out.result(job, lambda console: render_job(console, job))
    return 0


def run_cancel(ctx: Context, args: argparse.Namespace) -> int:
    job, completed = ctx.api.cancel_job(args.job_id)
    ctx.out.note("cancelled" if completed else "cancel requested: the running job stops at its next checkpoint")
    ctx.out.result(job, lambda console: render_job(console, job))
    return 0


def run_download(ctx: Context, args: argparse.Namespace) -> int:
    check_destination(args.output_file)
    job = ctx.api.job(args.job_id)
    downloaded = download(ctx, job, args.output_file)
    document = {"job_id": job["id"], **downloaded.document()}
    ctx.out.result(document, lambda console: render_download(console, downloaded))
    return 0


# Renderings


def scope_of(item: dict[str, Any]) -> str | None:
    parts = [
        f"{name}={item[key]}"
        for name, key in (("farm", "farm_id"), ("barn", "barn_id"), ("batch", "batch_id"))
        if item.get(key)
    ]
    return " ".join(parts) or None


def period_of(item: dict[str, Any]) -> str | None:
    if item.get("start_date") or item.get("end_date"):
        return f"{item.get('start_date') or '?'}..{item.get('end_date') or '?'}"
    return None


def render_job(console: Console, job: dict[str, Any]) -> None:
    status = status_text(job.get("status"))
    if job.get("status") == "running":
        status.append(f"  {job.get('progress_pct', 0)}%  {job.get('phase') or ''}")
    if job.get("cancel_requested") and job.get("status") in ("queued", "running"):
        status.append("  (cancel requested)", style="magenta")
    error = f"{job['error_code']}: {job.get('error_message') or ''}" if job.get("error_code") else None
    file_format = text(job.get("format")) + (f" + {job['compression']}" if job.get("compression") else "")
    hold = job.get("legal_hold")
    console.print(
        fields_table(
            [
                ("id", job.get("id")),
                ("type", job.get("job_type")),
                ("status", status),
                ("error", Text(error, style="red") if error else None),
                ("format", file_format),
                ("scope", scope_of(job)),
                ("period", period_of(job)),
                ("filters", job.get("filters")),
                ("rows", job.get("rows_written") if job.get("row_count") is None else job.get("row_count")),
                ("file", job.get("file_name")),
                ("size", f"{job['size_bytes']:,} bytes" if isinstance(job.get("size_bytes"), int) else None),
                ("sha256", job.get("sha256")),
                ("expires", job.get("expires_at")),
                ("legal hold", f"{hold['reason']} (by {hold['placed_by']}, {hold['placed_at']})" if hold else None),
                ("re-export of", job.get("reexport_of")),
                ("re-export", job.get("reexport_id") or job.get("active_reexport_id")),
                ("schedule", job.get("schedule_id")),
                ("requested by", job.get("requested_by")),
                ("idempotency key", job.get("idempotency_key")),
                ("created", job.get("created_at")),
                ("updated", job.get("updated_at")),
            ]
        )
    )


def render_jobs(console: Console, jobs: list[dict[str, Any]]) -> None:
    if not jobs:
        console.print("no jobs")
        return
    rows = [
        (
            job.get("id"),
            job.get("job_type"),
            status_text(job.get("status")),
            f"{job.get('progress_pct', 0)}%",
            job.get("rows_written") if job.get("row_count") is None else job.get("row_count"),
            text(job.get("format")) + (".gz" if job.get("compression") else ""),
            scope_of(job),
            period_of(job),
            moment(job.get("created_at")),
        )
        for job in jobs
    ]
    columns = ("id", "type", "status", "progress", "rows", "format", "scope", "period", "created")
    console.print(list_table(columns, rows))


def render_download(console: Console, downloaded: Downloaded) -> None:
    console.print(
        f"saved {downloaded.path} ({downloaded.size_bytes:,} bytes): sha256 and size verified against the job's"
    )


def render_finished(console: Console, job: dict[str, Any], downloaded: Downloaded | None) -> None:
    render_job(console, job)
    if downloaded is not None:
        render_download(console, downloaded)
    else:
        console.print(f"not downloaded; later: reports download {job['id']}")
