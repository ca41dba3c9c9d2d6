"""The report types the service produces: their columns, formats, filters and period rules."""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from report_client.commands import Context, Subparsers, add_command
from report_client.job_parameters import identifier
from report_client.output import fields_table, list_table, text


def register(commands: Subparsers, common: argparse.ArgumentParser) -> None:
    types = add_command(commands, common, "types", run_types, "the report types: columns, formats, filters, period")
    types.add_argument("job_type", nargs="?", type=_job_type, metavar="JOB_TYPE", help="one type in detail")


def _job_type(text: str) -> str:
    return identifier(text).upper()


def run_types(ctx: Context, args: argparse.Namespace) -> int:
    if args.job_type:
        item = ctx.api.report_type(args.job_type)
        ctx.out.result(item, lambda console: render_type(console, item))
        return 0
    listing = ctx.api.report_types()
    items = listing.get("items", []) if isinstance(listing, dict) else listing
    ctx.out.result(listing, lambda console: render_types(console, items))
    return 0


def _period(period: dict[str, Any] | None) -> str | None:
    if not period:
        return None
    parts = ["required" if period.get("required") else "optional"]
    if period.get("max_days"):
        parts.append(f"at most {period['max_days']} days")
    if period.get("slicing"):
        parts.append(f"slicing {text(period['slicing'])}")
    return ", ".join(parts)


def render_types(console: Console, items: list[dict[str, Any]]) -> None:
    rows = [
        (
            item.get("job_type"),
            item.get("title"),
            item.get("formats"),
            item.get("compressions"),
            item.get("scope_fields"),
            _period(item.get("period")),
            item.get("definition_version"),
        )
        for item in items
    ]
    console.print(list_table(("type", "title", "formats", "compressions", "scope", "period", "version"), rows))
    console.print("details: reports types JOB_TYPE")


def render_type(console: Console, item: dict[str, Any]) -> None:
    filters = item.get("filters") or {}
    console.print(
        fields_table(
            [
                ("type", item.get("job_type")),
                ("title", item.get("title")),
                ("description", item.get("description")),
                ("definition version", item.get("definition_version")),
                ("formats", item.get("formats")),
                ("compressions", item.get("compressions")),
                ("sort key", item.get("sort_key")),
                ("scope fields", item.get("scope_fields")),
                ("period", _period(item.get("period"))),
                ("filters, at most", _limits(filters)),
                ("filter names", filters.get("name_pattern")),
                ("reserved names", filters.get("reserved_names")),
                ("filter values", filters.get("value_types")),
            ]
        )
    )
    columns = item.get("columns") or []
    if columns:
        rows = [
            (column.get("name"), column.get("type"), column.get("nullable"), column.get("description"))
            for column in columns
        ]
        console.print(list_table(("column", "type", "nullable", "description"), rows, title="columns"))


def _limits(filters: dict[str, Any]) -> str | None:
    parts = []
    if filters.get("max_count") is not None:
        parts.append(f"{filters['max_count']} filters")
    if filters.get("max_bytes") is not None:
        parts.append(f"{filters['max_bytes']} bytes")
    return ", ".join(parts) or None
