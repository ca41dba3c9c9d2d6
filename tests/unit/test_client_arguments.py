"""The command line's arguments become the API's request bodies: filters typed as the API takes them
(FilterValue: booleans, numbers, strings, lists of strings), dates, scope, re-export overrides."""

from __future__ import annotations

import argparse

import pytest

from report_client.errors import UsageError
from report_client.job_parameters import filter_argument, job_body, overrides_of
from report_client.parser import build_parser


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("min_kg=10", ("min_kg", 10)),
        ("delta=-3", ("delta", -3)),
        ("ratio=0.25", ("ratio", 0.25)),
        ("ratio=1e3", ("ratio", 1000.0)),
        ("active=true", ("active", True)),
        ("active=false", ("active", False)),
        ("feed=pellets", ("feed", "pellets")),
        ("feeds=pellets, mash,crumble", ("feeds", ["pellets", "mash", "crumble"])),
        ("codes=1,2", ("codes", ["1", "2"])),  # a list holds strings, as the API takes it
        ("note=", ("note", "")),
        ("expr=a=b", ("expr", "a=b")),
        ("nan=nan", ("nan", "nan")),  # not a number: JSON has no NaN
        ('code:="007"', ("code", "007")),
        ('tags:=["a,b", "c"]', ("tags", ["a,b", "c"])),
        ("limit_kg:=12.5", ("limit_kg", 12.5)),
        ("flag:=true", ("flag", True)),
    ],
)
def test_a_filter_value_is_typed_as_json(argument, expected):
    assert filter_argument(argument) == expected


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("no_equals", "is not NAME=VALUE"),
        ("9lives=1", "is not a filter name"),
        ("bad-name=1", "is not a filter name"),
        ("x:={not json", "needs a JSON value"),
        ('x:={"a": 1}', "a boolean, a number, a string or a list of strings"),
        ("x:=[1, 2]", "a boolean, a number, a string or a list of strings"),
        ("x:=null", "a boolean, a number, a string or a list of strings"),
    ],
)
def test_a_bad_filter_is_refused(argument, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        filter_argument(argument)


def test_create_sends_every_job_parameter_given():
    args = parse(
        "create",
        "--type",
        "feed_intake_export",
        "--format",
        "json",
        "--compression",
        "gzip",
        "--farm",
        "farm-12",
        "--barn",
        "b1",
        "--batch",
        "x.9",
        "--from",
        "2025-01-01",
        "--to",
        "2025-01-31",
        "--filter",
        "min_kg=10",
        "--filter",
        "feeds=a,b",
        "--idempotency-key",
        "retry-1",
    )

    assert job_body(args) == {
        "job_type": "FEED_INTAKE_EXPORT",
        "format": "json",
        "compression": "gzip",
        "farm_id": "farm-12",
        "barn_id": "b1",
        "batch_id": "x.9",
        "start_date": "2025-01-01",
        "end_date": "2025-01-31",
        "filters": {"min_kg": 10, "feeds": ["a", "b"]},
        "idempotency_key": "retry-1",
    }


def test_create_leaves_out_what_was_not_given():
    args = parse("create", "--type", "TELEMETRY_EXPORT", "--compression", "none")
    args.idempotency_key = "k"

    assert job_body(args) == {"job_type": "TELEMETRY_EXPORT", "idempotency_key": "k"}


def test_a_filter_given_twice_is_a_usage_error():
    args = parse("create", "--type", "TELEMETRY_EXPORT", "--filter", "a=1", "--filter", "a=2")

    with pytest.raises(UsageError, match="--filter a is given twice"):
        job_body(args)


@pytest.mark.parametrize("value", ["2025-1-01", "2025-02-30", "yesterday", "20250101"])
def test_a_date_that_is_not_yyyy_mm_dd_is_a_usage_error(value):
    with pytest.raises(UsageError, match="is not a date in the form YYYY-MM-DD"):
        parse("create", "--type", "TELEMETRY_EXPORT", "--from", value)


def test_global_options_may_come_before_or_after_the_command():
    before = parse("--output", "json", "--api-url", "http://a", "show", "j1")
    after = parse("show", "j1", "--output", "json", "--token", "t")
    default = parse("show", "j1")

    assert (before.output, before.api_url, before.token) == ("json", "http://a", None)
    assert (after.output, after.api_url, after.token) == ("json", None, "t")
    assert default.output == "table"


def test_reexport_overrides_hold_only_what_was_asked_for():
    assert overrides_of(parse("reexport", "j1", "--reason", "audit")) is None
    assert overrides_of(parse("reexport", "j1", "--reason", "r", "--compression", "none", "--no-filters")) == {
        "compression": None,
        "filters": None,
    }
    assert overrides_of(
        parse(
            "reexport",
            "j1",
            "--reason",
            "r",
            "--format",
            "json",
            "--filter",
            "x=1",
            "--from",
            "2025-02-01",
            "--to",
            "2025-02-28",
        )
    ) == {"format": "json", "filters": {"x": 1}, "start_date": "2025-02-01", "end_date": "2025-02-28"}


def test_page_size_and_paging_options_are_checked():
    assert parse("list", "--limit", "100", "--all").all is True
    with pytest.raises(UsageError, match="not a page size from 1 to 100"):
        parse("list", "--limit", "0")
    with pytest.raises(UsageError, match="not allowed with argument"):
        parse("list", "--cursor", "abc", "--all")
    with pytest.raises(UsageError, match="not allowed with argument"):
        parse("list", "--expired", "--not-expired")
