"""Re-exports (a past report regenerated from its stored parameters, with its lineage) and a report's
audit history."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.text import Text

from report_client.commands import Context, Subparsers, add_command
from report_client.commands.following import add_wait_options, check_wait_options, wait_then_download
from report_client.commands.jobs import add_paging_options, more_hint, read_pages, render_download
from report_client.downloads import Downloaded
from report_client.errors import JobUnsuccessful
from report_client.job_parameters import (
    add_filter_option,
    add_format_options,
    date_argument,
    identifier,
    overrides_of,
)
from report_client.output import fields_table, list_table, moment, status_text, text

REEXPORT_STATUSES = ("pending", "running", "succeeded", "failed", "cancelled")


def register(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    reexport = add_command(
        commands, common, "reexport", run_reexport, "re-export a past report, e.g. for an auditor, and show its lineage"
    )
    reexport.add_argument(
        "job_id", type=identifier, metavar="JOB", help="the original report's job id (it must have succeeded)"
    )
    reexport.add_argument("--reason", required=True, help="why: kept in the report's audit history")
    overrides = reexport.add_argument_group("overrides (the original's parameters unless given)")
    add_format_options(overrides, defaults=False)  # type: ignore[arg-type]
    add_filter_option(overrides, "; replaces all the original's filters")  # type: ignore[arg-type]
    overrides.add_argument("--no-filters", action="store_true", help="drop the original's filters")
    overrides.add_argument("--from", dest="start_date", type=date_argument, metavar="YYYY-MM-DD", help="first day")
    overrides.add_argument("--to", dest="end_date", type=date_argument, metavar="YYYY-MM-DD", help="last day")
    add_wait_options(reexport)

    group = commands.add_parser("reexports", parents=[common], help="list, show or cancel re-exports")
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = add_command(actions, common, "list", run_list, "list re-exports, newest first")
    listing.add_argument("--report", dest="report_id", metavar="JOB", help="only re-exports of this report")
    listing.add_argument("--status", choices=REEXPORT_STATUSES, help="only re-exports in this status")
    add_paging_options(listing, default_limit=20)
    show = add_command(actions, common, "show", run_show, "show a re-export: status and lineage")
    show.add_argument("reexport_id", type=identifier, metavar="REEXPORT")
    cancel = add_command(actions, common, "cancel", run_cancel, "cancel a pending or running re-export")
    cancel.add_argument("reexport_id", type=identifier, metavar="REEXPORT")

    history = add_command(commands, common, "history", run_history, "a report's audit history, oldest first")
    history.add_argument("job_id", type=identifier, metavar="JOB")
    add_paging_options(history, default_limit=50)


# Handlers


def run_reexport(ctx: Context, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"report_id": args.job_id, "reason": args.reason}
    overrides = overrides_of(args)
    check_wait_options(args)
    if overrides is not None:
        body["overrides"] = overrides
    record, replayed = ctx.api.create_reexport(body)
    if replayed:
        ctx.out.note(f"a re-export of this report is already {record['status']}: that one is shown ({record['id']})")
    else:
        ctx.out.note(f"re-export {record['id']} requested; its job is {record['job_id']}")
    if not args.wait:
        ctx.out.result(record, lambda console: render_reexport(console, record))
        return 0

    def cancel() -> str:
        _, completed = ctx.api.cancel_reexport(record["id"])
        return f"re-export {record['id']} " + ("cancelled" if completed else "asked to stop at its next checkpoint")

    try:
        job, downloaded = wait_then_download(ctx, record["job_id"], args, cancel, label=f"re-export {record['id'][:8]}")
    except JobUnsuccessful as failure:
        ended = ctx.api.reexport(record["id"])
        raise JobUnsuccessful(
            f"re-export {ended['id']} {ended['status']}"
            + (f": {ended['error_code']}: {ended.get('error_message') or ''}" if ended.get("error_code") else ""),
            {"reexport": ended, **(failure.record or {})},
        ) from None
    ended = ctx.api.reexport(record["id"])
    document = {"reexport": ended, "job": job, "download": downloaded.document() if downloaded else None}
    ctx.out.result(document, lambda console: _render_waited(console, ended, downloaded))
    return 0


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    page = read_pages(ctx.api.reexports, args, report_id=args.report_id, status=args.status)
    ctx.out.result(page, lambda console: render_reexports(console, page["items"]))
    more_hint(ctx, page)
    return 0


def run_show(ctx: Context, args: argparse.Namespace) -> int:
    record = ctx.api.reexport(args.reexport_id)
    ctx.out.result(record, lambda console: render_reexport(console, record))
    return 0


def run_cancel(ctx: Context, args: argparse.Namespace) -> int:
    record, completed = ctx.api.cancel_reexport(args.reexport_id)
    ctx.out.note("cancelled" if completed else "cancel requested: its job stops at its next checkpoint")
    ctx.out.result(record, lambda console: render_reexport(console, record))
    return 0


def run_history(ctx: Context, args: argparse.Namespace) -> int:
    page = read_pages(lambda **query: ctx.api.history(args.job_id, **query), args)
    ctx.out.result(page, lambda console: render_history(console, page))
    more_hint(ctx, page)
    chain = page.get("chain") or {}
    if chain and not chain.get("intact", True):
        ctx.out.note(
            f"the history's hash chain is broken at {chain.get('first_broken')}: {chain.get('problem')}", style="red"
        )
    return 0


# Renderings


def _file_rows(label: str, file: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if not file:
        return [(label, "-")]
    rows = f", {file['row_count']:,} rows" if isinstance(file.get("row_count"), int) else ""
    return [
        (label, f"{file.get('file_name') or file.get('key')} ({file.get('size_bytes', 0):,} bytes{rows})"),
        ("  sha256", file.get("sha256")),
    ]


def _matches(record: dict[str, Any]) -> Text:
    value = record.get("matches_original")
    if value is None:
        return Text("not known yet" if record.get("status") in ("pending", "running") else "-")
    if value:
        return Text("yes: byte-identical to the original", style="green")
    return Text("no: the new file differs from the original", style="yellow")


def render_reexport(console: Console, record: dict[str, Any]) -> None:
    error = f"{record['error_code']}: {record.get('error_message') or ''}" if record.get("error_code") else None
    console.print(
        fields_table(
            [
                ("re-export", record.get("id")),
                ("status", status_text(record.get("status"))),
                ("error", Text(error, style="red") if error else None),
                ("original report", record.get("report_id")),
                ("new job", record.get("job_id")),
                ("requested by", record.get("requested_by")),
                ("reason", record.get("reason")),
                ("overrides", record.get("overrides")),
                *_file_rows("original file", record.get("original_file")),
                *_file_rows("new file", record.get("new_file")),
                ("matches_original", _matches(record)),
                ("changed inputs", _changed_inputs(record.get("changed_inputs"))),
                ("created", record.get("created_at")),
                ("completed", record.get("completed_at")),
                ("kept until", record.get("expires_at")),
            ],
            title="lineage",
        )
    )
    comparison = record.get("comparison")
    if record.get("matches_original") is False and comparison:
        render_comparison(console, comparison)


def _changed_inputs(changed: dict[str, Any] | None) -> str | None:
    if not changed:
        return None
    return ", ".join(
        f"{name}: {'changed' if value else 'same' if value is False else '?'}" for name, value in changed.items()
    )


def render_comparison(console: Console, comparison: dict[str, Any]) -> None:
    if not comparison.get("compared"):
        console.print(f"rows not compared: {comparison.get('reason') or 'no reason given'}")
        return
    counts = [(kind, comparison.get(kind)) for kind in ("only_in_original", "only_in_new", "changed", "unchanged")]
    console.print(fields_table(counts, title="row comparison (by the report's sort key)"))
    samples = comparison.get("first_keys") or {}
    rows = [
        (kind, text(key)) for kind in ("only_in_original", "only_in_new", "changed") for key in samples.get(kind, [])
    ]
    if rows:
        console.print(list_table(("kind", "first keys"), rows))


def _render_waited(console: Console, record: dict[str, Any], downloaded: Downloaded | None) -> None:
    render_reexport(console, record)
    if downloaded is not None:
        render_download(console, downloaded)


def render_reexports(console: Console, records: list[dict[str, Any]]) -> None:
    if not records:
        console.print("no re-exports")
        return
    rows = [
        (
            record.get("id"),
            record.get("report_id"),
            status_text(record.get("status")),
            _matches(record).plain.split(":")[0],
            record.get("requested_by"),
            record.get("reason"),
            moment(record.get("created_at")),
        )
        for record in records
    ]
    console.print(list_table(("id", "report", "status", "matches", "by", "reason", "created"), rows))


def render_history(console: Console, page: dict[str, Any]) -> None:
    rows = [
        (moment(event.get("at")), event.get("event"), event.get("actor"), event.get("details"))
        for event in page["items"]
    ]
    console.print(list_table(("at", "event", "actor", "details"), rows))
    chain = page.get("chain")
    if chain:
        if chain.get("intact"):
            console.print(
                Text(f"hash chain intact: {chain.get('sealed')} entries, head {chain.get('head')}", style="green")
            )
        else:
            console.print(
                Text(f"hash chain BROKEN at {chain.get('first_broken')}: {chain.get('problem')}", style="red")
            )
