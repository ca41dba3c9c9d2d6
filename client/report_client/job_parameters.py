"""A job's parameters from the command line, as the API takes them: filters typed as JSON values, dates,
scope. The argparse types here turn a bad value into a usage error before anything is sent."""

from __future__ import annotations

import argparse
import json
import math
import re
from datetime import date
from typing import Any

from report_client.errors import UsageError

# The API's rules (FilterName); checked here too, so a typo is a usage error that names the argument.
_FILTER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")

FilterValue = bool | int | float | str | list[str]


def filter_argument(text: str) -> tuple[str, FilterValue]:
    """NAME=VALUE, the value read as the API's filter types: true/false, a number, a comma list of
    strings, or else a string. NAME:=JSON takes the value literally, e.g. code:='"007"' for a string
    that looks like a number, or tags:='["a,b"]' for a list item with a comma."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    name, raw = text.split("=", 1)
    if name.endswith(":"):
        name = name[:-1]
        value = _literal(name, raw)
    else:
        value = infer_value(raw)
    if not _FILTER_NAME.match(name):
        raise argparse.ArgumentTypeError(
            f"{name!r} is not a filter name (letters, digits and _, not starting with a digit)"
        )
    return name, value


def infer_value(raw: str) -> FilterValue:
    if raw in ("true", "false"):
        return raw == "true"
    if _INTEGER.match(raw):
        return int(raw)
    if _NUMBER.match(raw):
        return float(raw)
    if "," in raw:
        return [item.strip() for item in raw.split(",")]
    return raw


def _literal(name: str, raw: str) -> FilterValue:
    try:
        value = json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{name}:= needs a JSON value, not {raw!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{name}: a number must be finite")
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise argparse.ArgumentTypeError(f"{name}: a filter is a boolean, a number, a string or a list of strings")


def filters_of(pairs: list[tuple[str, FilterValue]] | None) -> dict[str, FilterValue] | None:
    if not pairs:
        return None
    filters: dict[str, FilterValue] = {}
    for name, value in pairs:
        if name in filters:
            raise UsageError(f"--filter {name} is given twice")
        filters[name] = value
    return filters


def exclusive_filters(args: argparse.Namespace) -> None:
    if args.filters:
        raise UsageError(
            "--no-filters and --filter exclude each other: --no-filters drops every filter, --filter replaces them",
            hint="give one of them",
        )


def identifier(text: str) -> str:
    """A job, re-export or schedule id as an argument: an empty one would address the collection itself."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an id cannot be empty")
    if any(not character.isprintable() for character in text):
        raise argparse.ArgumentTypeError("an id cannot contain control characters")
    return text


def date_argument(text: str) -> str:
    """YYYY-MM-DD, as the API takes a report's period."""
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD") from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def add_scope_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--farm", dest="farm_id", metavar="ID", help="farm id (scope)")
    parser.add_argument("--barn", dest="barn_id", metavar="ID", help="barn id (scope)")
    parser.add_argument("--batch", dest="batch_id", metavar="ID", help="batch id (scope)")


def add_filter_option(parser: argparse.ArgumentParser, help_suffix: str = "") -> None:
    parser.add_argument(
        "--filter",
        dest="filters",
        metavar="NAME=VALUE",
        type=filter_argument,
        action="append",
        help="a filter (repeatable): true/false, numbers and a,b,c lists are typed as JSON; "
        "NAME:=JSON gives the JSON value itself" + help_suffix,
    )


def add_format_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    parser.add_argument(
        "--format", choices=("csv", "json"), help="csv, or json (NDJSON)" + (" [csv]" if defaults else "")
    )
    parser.add_argument(
        "--compression",
        choices=("gzip", "none"),
        help="gzip stores the file compressed" + ("" if defaults else "; none removes the original's compression"),
    )


def job_body(args: argparse.Namespace) -> dict[str, Any]:
    """POST /api/v1/reports/jobs from the create command's arguments; what is not given is left out."""
    body: dict[str, Any] = {"job_type": args.job_type}
    for name in ("format", "farm_id", "barn_id", "batch_id", "start_date", "end_date"):
        value = getattr(args, name, None)
        if value is not None:
            body[name] = value
    if args.compression not in (None, "none"):
        body["compression"] = args.compression
    filters = filters_of(args.filters)
    if filters is not None:
        body["filters"] = filters
    body["idempotency_key"] = args.idempotency_key
    return body


def overrides_of(args: argparse.Namespace) -> dict[str, Any] | None:
    """A re-export's overrides: only what was asked for (null removes compression or the filters)."""
    overrides: dict[str, Any] = {}
    if args.format is not None:
        overrides["format"] = args.format
    if args.compression is not None:
        overrides["compression"] = None if args.compression == "none" else args.compression
    if args.no_filters:
        exclusive_filters(args)
        overrides["filters"] = None
    elif args.filters:
        overrides["filters"] = filters_of(args.filters)
    if args.start_date is not None:
        overrides["start_date"] = args.start_date
    if args.end_date is not None:
        overrides["end_date"] = args.end_date
    return overrides or None
