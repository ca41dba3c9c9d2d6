"""Schedules: reports exported on a calendar (list, create, show, update, delete), and firing one now on
the local stack, whose own endpoint does what EventBridge Scheduler does when a schedule is due."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from report_client.commands import Context, Subparsers, add_command
from report_client.commands.following import add_wait_options, check_wait_options, wait_then_download
from report_client.commands.jobs import add_paging_options, cancel_message, more_hint, read_pages, render_download
from report_client.errors import UsageError
from report_client.job_parameters import (
    add_filter_option,
    add_format_options,
    add_scope_options,
    exclusive_filters,
    filters_of,
    identifier,
)
from report_client.output import fields_table, list_table, moment, status_text

PERIODS = ("previous_day", "previous_week", "previous_month", "previous_quarter", "previous_year", "month_to_date")
_SPEC_FIELDS = ("description", "expression", "time_zone", "enabled", "start_at", "end_at", "export")
_EXPORT_FIELDS = ("job_type", "format", "compression", "farm_id", "barn_id", "batch_id", "filters", "period")


def register(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("schedules", parents=[common], help="reports on a calendar: list, create, fire...")
    actions = group.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = add_command(actions, common, "list", run_list, "list the tenant's schedules, newest first")
    add_paging_options(listing, default_limit=20)

    create = add_command(actions, common, "create", run_create, "create a schedule (role tenant_admin)")
    _spec_options(create, creating=True)

    show = add_command(actions, common, "show", run_show, "show a schedule, its next firing and its last runs")
    show.add_argument("schedule_id", type=identifier, metavar="SCHEDULE")

    update = add_command(actions, common, "update", run_update, "change a schedule: only the options given change")
    update.add_argument("schedule_id", type=identifier, metavar="SCHEDULE")
    _spec_options(update, creating=False)

    delete = add_command(actions, common, "delete", run_delete, "delete a schedule (its jobs stay)")
    delete.add_argument("schedule_id", type=identifier, metavar="SCHEDULE")
    delete.add_argument("--version", type=int, help="only if the schedule is still at this version")

    fire = add_command(
        actions, common, "fire", run_fire, "fire a schedule now (local stack only: ./dev run's own endpoint)"
    )
    fire.add_argument(
        "schedule_id", type=identifier, metavar="SCHEDULE", help="the schedule's id (or its Scheduler name)"
    )
    fire.add_argument("--time", metavar="ISO8601", help="the scheduled time the firing stands for [now]")
    add_wait_options(fire)


def _spec_options(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    timing = parser.add_argument_group("when")
    timing.add_argument("--expression", required=creating, help="cron(0 6 1 * ? *) or rate(1 day)")
    timing.add_argument("--time-zone", metavar="ZONE", help="IANA time zone, e.g. Europe/Oslo" + (" [UTC]" * creating))
    timing.add_argument("--description", help="what it is for")
    timing.add_argument("--start-at", metavar="ISO8601", help="no firing before this moment (with its offset)")
    timing.add_argument("--end-at", metavar="ISO8601", help="no firing after this moment (with its offset)")
    enabled = timing.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_const", const=True, help="fire when due")
    enabled.add_argument("--disable", dest="enabled", action="store_const", const=False, help="fire no more")
    export = parser.add_argument_group("what each firing exports")
    export.add_argument("--type", dest="job_type", required=creating, type=str.upper, metavar="JOB_TYPE")
    export.add_argument("--period", choices=PERIODS, required=creating, help="the dates a firing stands for")
    add_format_options(export, defaults=creating)  # type: ignore[arg-type]
    add_scope_options(export)  # type: ignore[arg-type]
    add_filter_option(export, "" if creating else "; replaces all the filters")  # type: ignore[arg-type]
    if not creating:
        export.add_argument("--no-filters", action="store_true", help="drop the filters")


def _export_changes(args: argparse.Namespace) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name in ("job_type", "format", "farm_id", "barn_id", "batch_id", "period"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.compression is not None:
        changes["compression"] = None if args.compression == "none" else args.compression
    if getattr(args, "no_filters", False):
        exclusive_filters(args)
        changes["filters"] = None
    elif args.filters:
        changes["filters"] = filters_of(args.filters)
    return changes


def _timing_changes(args: argparse.Namespace) -> dict[str, Any]:
    names = ("expression", "time_zone", "description", "start_at", "end_at", "enabled")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


# Handlers


def run_list(ctx: Context, args: argparse.Namespace) -> int:
    page = read_pages(ctx.api.schedules, args)
    ctx.out.result(page, lambda console: render_schedules(console, page["items"]))
    more_hint(ctx, page)
    return 0


def run_create(ctx: Context, args: argparse.Namespace) -> int:
    body = {**_timing_changes(args), "export": _export_changes(args)}
    schedule = ctx.api.create_schedule(body)
    ctx.out.note(f"created schedule {schedule['id']}")
    ctx.out.result(schedule, lambda console: render_schedule(console, schedule))
    return 0


def run_show(ctx: Context, args: argparse.Namespace) -> int:
    schedule = ctx.api.schedule(args.schedule_id)
    ctx.out.result(schedule, lambda console: render_schedule(console, schedule))
    return 0


def run_update(ctx: Context, args: argparse.Namespace) -> int:
    timing, export = _timing_changes(args), _export_changes(args)
    if not timing and not export:
        raise UsageError("nothing to change: give at least one option", hint="see: reports schedules update --help")
    # The API replaces the whole schedule: start from the one read, at its version, so nothing else changes
    # and a change someone made in between is refused (409) rather than overwritten.
    current = ctx.api.schedule(args.schedule_id)
    spec = {name: current.get(name) for name in _SPEC_FIELDS}
    spec["export"] = {name: (current.get("export") or {}).get(name) for name in _EXPORT_FIELDS}
    spec.update(timing)
    spec["export"].update(export)
    schedule = ctx.api.update_schedule(args.schedule_id, spec, int(current["version"]))
    ctx.out.note(f"schedule {schedule['id']} is now at version {schedule['version']}")
    ctx.out.result(schedule, lambda console: render_schedule(console, schedule))
    return 0


def run_delete(ctx: Context, args: argparse.Namespace) -> int:
    ctx.api.delete_schedule(args.schedule_id, args.version)
    document = {"id": args.schedule_id, "deleted": True}
    ctx.out.result(document, lambda console: console.print(f"deleted schedule {args.schedule_id}"))
    return 0


def run_fire(ctx: Context, args: argparse.Namespace) -> int:
    check_wait_options(args)
    firing = ctx.api.fire_schedule(args.schedule_id, args.time)
    made = firing.get("response") or {}
    job_id = made.get("job_id")
    if not args.wait or not job_id:
        ctx.out.result(firing, lambda console: render_firing(console, firing))
        return 0
    ctx.out.note(f"fired {firing.get('schedule')}: job {job_id}" + (" (made before)" if made.get("replayed") else ""))
    job, downloaded = wait_then_download(ctx, job_id, args, cancel=lambda: cancel_message(ctx, job_id))
    document = {"firing": firing, "job": job, "download": downloaded.document() if downloaded else None}

    def render(console: Console) -> None:
        render_firing(console, firing)
        if downloaded is not None:
            render_download(console, downloaded)

    ctx.out.result(document, render)
    return 0


# Renderings


def _export_summary(export: dict[str, Any] | None) -> str:
    if not export:
        return "-"
    parts = [str(export.get("job_type")), str(export.get("period")), str(export.get("format") or "csv")]
    if export.get("compression"):
        parts.append(str(export["compression"]))
    scope = [f"{key}={export[key]}" for key in ("farm_id", "barn_id", "batch_id") if export.get(key)]
    return " ".join(parts + scope)


def render_schedules(console: Console, schedules: list[dict[str, Any]]) -> None:
    if not schedules:
        console.print("no schedules")
        return
    rows = [
        (
            item.get("id"),
            item.get("description"),
            item.get("expression"),
            item.get("time_zone"),
            item.get("enabled"),
            moment(item.get("next_firing_at")),
            _export_summary(item.get("export")),
        )
        for item in schedules
    ]
    console.print(list_table(("id", "description", "expression", "zone", "enabled", "next firing", "exports"), rows))


def render_schedule(console: Console, schedule: dict[str, Any]) -> None:
    export = schedule.get("export") or {}
    console.print(
        fields_table(
            [
                ("id", schedule.get("id")),
                ("description", schedule.get("description")),
                ("expression", schedule.get("expression")),
                ("time zone", schedule.get("time_zone")),
                ("enabled", schedule.get("enabled")),
                ("window", _window(schedule)),
                ("next firing", schedule.get("next_firing_at") or "-"),
                ("exports", _export_summary(export)),
                ("filters", export.get("filters")),
                ("version", schedule.get("version")),
                ("created", f"{schedule.get('created_at')} by {schedule.get('created_by')}"),
                ("updated", f"{schedule.get('updated_at')} by {schedule.get('updated_by')}"),
            ]
        )
    )
    runs = schedule.get("last_runs")
    if runs:
        rows = [
            (
                run.get("scheduled_time"),
                run.get("job_id"),
                f"{run.get('start_date')} .. {run.get('end_date')}",
                status_text(run.get("status")),
            )
            for run in runs
        ]
        console.print(list_table(("fired for", "job", "period", "status"), rows, title="last runs"))


def _window(schedule: dict[str, Any]) -> str | None:
    if not schedule.get("start_at") and not schedule.get("end_at"):
        return None
    return f"{schedule.get('start_at') or '...'} .. {schedule.get('end_at') or '...'}"


def render_firing(console: Console, firing: dict[str, Any]) -> None:
    made = firing.get("response") or {}
    job = made.get("job_id")
    console.print(
        fields_table(
            [
                ("schedule", firing.get("schedule")),
                ("fired for", firing.get("at")),
                ("job", job or made.get("skipped") or "-"),
                ("made before", made.get("replayed")),
                ("period", f"{made.get('start_date')} .. {made.get('end_date')}" if made.get("start_date") else None),
            ]
        )
    )
    if job:
        console.print(f"follow it: reports show {job}")
