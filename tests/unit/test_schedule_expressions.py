"""Schedule expressions: what EventBridge Scheduler accepts, and when a schedule fires next."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from report_export.schedules.expressions import Cron, InvalidExpression, Rate, next_firing, parse_expression

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def fire(expression: str, zone: str, after: str, **bounds: str) -> datetime | None:
    parsed = parse_expression(expression)
    limits = {name: at(value) for name, value in bounds.items()}
    return next_firing(parsed, zone, after=at(after), anchor=limits.pop("anchor", EPOCH), **limits)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        # field count
        ("cron(0 6 * * ?)", "6 fields"),
        ("cron(0 6 * * ? * *)", "6 fields"),
        ("cron()", "6 fields"),
        # each field's range
        ("cron(60 6 * * ? *)", "minutes values must be within 0-59"),
        ("cron(0 24 * * ? *)", "hours values must be within 0-23"),
        ("cron(0 6 0 * ? *)", "day-of-month values must be within 1-31"),
        ("cron(0 6 32 * ? *)", "day-of-month values must be within"),
        ("cron(0 6 * 0 ? *)", "month values must be within 1-12"),
        ("cron(0 6 * 13 ? *)", "month values must be within"),
        ("cron(0 6 ? * 0 *)", "day-of-week values must be within 1-7"),
        ("cron(0 6 ? * 8 *)", "day-of-week values must be within"),
        ("cron(0 6 * * ? 1969)", "year values must be within 1970-2199"),
        ("cron(0 6 * * ? 2200)", "year values must be within"),
        ("cron(-5 6 * * ? *)", "missing a value"),
        ("cron(0 6 * * ? 2025-)", "missing a value"),
        # names
        ("cron(0 6 * JANUARY ? *)", "month values must be numbers or names (1-12 or JAN-DEC)"),
        ("cron(0 6 ? * MONDAY *)", "day-of-week values must be numbers or names (1-7 or SUN-SAT)"),
        ("cron(MON 6 * * ? *)", "minutes values must be numbers"),
        ("cron(0 6 JAN * ? *)", "day-of-month values must be numbers"),
        # ?
        ("cron(0 ? * * ? *)", "? is only allowed in the day-of-month or day-of-week field, not in hours"),
        ("cron(0 6 * ? ? *)", "not in month"),
        ("cron(0 6 ?,1 * ? *)", "? must be the whole day-of-month field"),
        ("cron(0 6 ? * ?,MON *)", "? must be the whole day-of-week field"),
        # both day fields
        ("cron(0 6 * * * *)", "exactly one of day-of-month and day-of-week must be ?"),
        ("cron(0 6 ? * ? *)", "exactly one of day-of-month and day-of-week must be ?"),
        ("cron(0 6 1 * MON *)", "exactly one of day-of-month and day-of-week must be ?"),
        # L
        ("cron(0 6 L-3 * ? *)", "L, LW and W (as in 15W) stand alone"),
        ("cron(0 6 1,L * ? *)", "L, LW and W (as in 15W) stand alone"),
        ("cron(0 6 ? * 5L,6 *)", "L (as in 6L, the last Friday) stands alone"),
        ("cron(0 6 ? * 5-6L *)", "L (as in 6L, the last Friday) stands alone"),
        ("cron(0 6 ? * 8L *)", "day-of-week values must be within"),
        ("cron(L 6 * * ? *)", "minutes values must be numbers"),
        # W
        ("cron(0 6 1-15W * ? *)", "L, LW and W (as in 15W) stand alone"),
        ("cron(0 6 1,15W * ? *)", "L, LW and W (as in 15W) stand alone"),
        ("cron(0 6 32W * ? *)", "day-of-month values must be within"),
        ("cron(0 6 ? * 2W *)", "day-of-week values must be numbers"),
        # #
        ("cron(0 6 ? * 3#0 *)", "# takes one day and a week number 1-5"),
        ("cron(0 6 ? * 3#6 *)", "# takes one day and a week number 1-5"),
        ("cron(0 6 ? * 3# *)", "# takes one day and a week number 1-5"),
        ("cron(0 6 ? * 3#1,6#3 *)", "# takes one day and a week number 1-5"),
        ("cron(0 6 ? * 2-3#1 *)", "# takes one day and a week number 1-5"),
        ("cron(0 6 ? * 8#1 *)", "day-of-week values must be within"),
        ("cron(0 6 3#1 * ? *)", "day-of-month values must be numbers"),
        # increments
        ("cron(0/0 6 * * ? *)", "an increment in minutes must be a whole number from 1 to 60"),
        ("cron(*/61 6 * * ? *)", "from 1 to 60"),
        ("cron(0/x 6 * * ? *)", "an increment in minutes must be a whole number"),
        ("cron(0 6 ? * */2 *)", "day-of-week does not take increments"),
        # reversed ranges, empty list items
        ("cron(10-5 6 * * ? *)", "a minutes range runs backwards"),
        ("cron(0 22-2 * * ? *)", "a hours range runs backwards"),
        ("cron(0 6 ? * FRI-MON *)", "a day-of-week range runs backwards"),
        ("cron(0 6 * * ? 2030-2025)", "a year range runs backwards"),
        ("cron(,5 6 * * ? *)", "empty list item"),
        ("cron(0 6, * * ? *)", "empty list item"),
        ("cron(0 1,,2 * * ? *)", "empty list item"),
        # rate
        ("rate(0 minutes)", "positive whole number"),
        ("rate(-5 minutes)", "positive whole number"),
        ("rate(1.5 hours)", "positive whole number"),
        ("rate(five minutes)", "positive whole number"),
        ("rate(5 weeks)", "minute(s), hour(s) or day(s)"),
        ("rate(30 seconds)", "minute(s), hour(s) or day(s)"),
        ("rate(5)", "rate(value unit)"),
        ("rate()", "rate(value unit)"),
        ("rate(5 minutes please)", "rate(value unit)"),
        # not an expression at all, or a one-time one
        ("at(2025-06-01T06:00:00)", "at(...) is a one-time schedule; recurring report schedules accept only cron"),
        ("", "must be cron(...) or rate(...)"),
        ("every day at six", "must be cron(...) or rate(...)"),
        ("cron 0 6 * * ? *", "must be cron(...) or rate(...)"),
        ("CRON(0 6 * * ? *)", "must be cron(...) or rate(...)"),
        ("0 6 * * ? *", "must be cron(...) or rate(...)"),
    ],
)
def test_invalid_expressions_say_what_is_wrong_and_give_an_example(text, fragment):
    with pytest.raises(InvalidExpression) as caught:
        parse_expression(text)

    message = str(caught.value)
    assert fragment in message
    assert "Example: cron(" in message or "e.g. " in message
    assert isinstance(caught.value, ValueError)  # the API's 400 handling catches ValueError


@pytest.mark.parametrize(
    "text",
    [
        "cron(QZXQ 6 * * ? *)",
        "cron(0 QZXQ * * ? *)",
        "cron(0 6 QZXQ * ? *)",
        "cron(0 6 * QZXQ ? *)",
        "cron(0 6 ? * QZXQ *)",
        "cron(0 6 * * ? QZXQ)",
        "cron(0 6 * * QZXQ *)",
        "cron(0 6 QZXQW * ? *)",
        "cron(0 6 ? * QZXQL *)",
        "cron(0 6 ? * QZXQ#1 *)",
        "cron(0 6 ? * 1#QZXQ *)",
        "cron(0/QZXQ 6 * * ? *)",
        "cron(0 6 ? * QZXQ/2 *)",
        "cron(0 6 ?,QZXQ * ? *)",
        "cron(0 6 * * ? QZXQ-2025)",
        "cron(0 6 * * ? 2030-QZXQ)",
        "cron(0 6 * * ? * QZXQ)",
        "rate(QZXQ minutes)",
        "rate(5 QZXQ)",
        "rate(5 minutes QZXQ)",
        "QZXQ",
        "cron(987654 6 * * ? *)",
        "cron(0 6 ? * 987654L *)",
        "rate(987654321 days)",
    ],
)
def test_an_invalid_expression_is_explained_without_quoting_it_back(text):
    with pytest.raises(InvalidExpression) as caught:
        parse_expression(text)

    assert "QZXQ" not in str(caught.value) and "987654" not in str(caught.value)


def test_a_parsed_cron_expands_its_fields():
    cron = parse_expression("cron(0/15 */6 1-10/3 JAN,apr,Jul ? 2025-2027)")
    assert cron == parse_expression("cron(0,15,30,45 0,6,12,18 1,4,7,10 1,4,7 ? 2025,2026,2027)")
    assert isinstance(cron, Cron) and cron.days.values == (1, 4, 7, 10)
    assert cron.minutes == (0, 15, 30, 45)
    assert cron.hours == (0, 6, 12, 18)
    assert cron.months == (1, 4, 7)
    assert cron.years == (2025, 2026, 2027)
    assert parse_expression("cron(10-40/10 5/8 * * ? *)").minutes == (10, 20, 30, 40)
    assert parse_expression("cron(10-40/10 5/8 * * ? *)").hours == (5, 13, 21)


@pytest.mark.parametrize(
    ("text", "same_as"),
    [
        ("cron(0 6 ? * mon-fri *)", "cron(0 6 ? * 2-6 *)"),
        ("cron(0 6 ? * Sun,SAT *)", "cron(0 6 ? * 1,7 *)"),
        ("cron(0 6 ? * L *)", "cron(0 6 ? * 7 *)"),  # L alone in day-of-week is Saturday
        ("cron(0 6 ? * fril *)", "cron(0 6 ? * 6L *)"),
        ("cron(0 6 ? * tue#2 *)", "cron(0 6 ? * 3#2 *)"),
        ("cron(0 6 lw * ? *)", "cron(0 6 LW * ? *)"),
        ("cron(0 6 * dec ? *)", "cron(0 6 * 12 ? *)"),
        ("  cron(0   6\t* *  ?  *)  ", "cron(0 6 * * ? *)"),
        ("cron(00 06 01 * ? *)", "cron(0 6 1 * ? *)"),
        ("cron(* * * * ? *)", "cron(0-59 0-23 1-31 1-12 ? 1970-2199)"),
    ],
)
def test_equivalent_spellings_parse_alike(text, same_as):
    assert parse_expression(text) == parse_expression(same_as)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("rate(1 minute)", Rate(1, "minutes")),
        ("rate(5 minutes)", Rate(5, "minutes")),
        ("rate(1 hours)", Rate(1, "hours")),  # EventBridge wants "1 hour"; both spellings are taken
        ("rate(12 hour)", Rate(12, "hours")),
        ("rate(1 day)", Rate(1, "days")),
        ("rate( 7   days )", Rate(7, "days")),
    ],
)
def test_rates_parse_in_either_number(text, rate):
    assert parse_expression(text) == rate


def test_a_rate_interval_is_exact_hours_and_days():
    assert Rate(90, "minutes").interval == timedelta(minutes=90)
    assert Rate(6, "hours").interval == timedelta(hours=6)
    assert Rate(2, "days").interval == timedelta(hours=48)


# --- next firing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        # daily 06:00 in Oslo: 05:00 UTC in winter, 04:00 in summer
        ("cron(0 6 * * ? *)", "Europe/Oslo", "2025-01-15T10:00:00+00:00", "2025-01-16T05:00:00+00:00"),
        ("cron(0 6 * * ? *)", "Europe/Oslo", "2025-06-10T03:00:00+00:00", "2025-06-10T04:00:00+00:00"),
        ("cron(0 6 * * ? *)", "Europe/Oslo", "2025-06-10T04:00:00+00:00", "2025-06-11T04:00:00+00:00"),  # strictly
        # first of the month
        ("cron(0 6 1 * ? *)", "Europe/Oslo", "2025-01-01T05:00:00+00:00", "2025-02-01T05:00:00+00:00"),
        ("cron(0 6 1 * ? *)", "Europe/Oslo", "2025-12-15T00:00:00+00:00", "2026-01-01T05:00:00+00:00"),
        # last day of the month, leap and not
        ("cron(0 22 L * ? *)", "UTC", "2024-02-10T00:00:00+00:00", "2024-02-29T22:00:00+00:00"),
        ("cron(0 22 L * ? *)", "UTC", "2025-02-10T00:00:00+00:00", "2025-02-28T22:00:00+00:00"),
        ("cron(0 6 L * ? *)", "Europe/Oslo", "2025-04-01T00:00:00+00:00", "2025-04-30T04:00:00+00:00"),
        # last Friday
        ("cron(0 9 ? * 6L *)", "UTC", "2025-01-01T00:00:00+00:00", "2025-01-31T09:00:00+00:00"),
        ("cron(0 9 ? * 6L *)", "UTC", "2025-06-01T00:00:00+00:00", "2025-06-27T09:00:00+00:00"),
        # nearest weekday, never leaving the month
        ("cron(0 9 15W * ? *)", "UTC", "2025-06-01T00:00:00+00:00", "2025-06-16T09:00:00+00:00"),  # Sun -> Mon
        ("cron(0 9 15W * ? *)", "UTC", "2025-03-01T00:00:00+00:00", "2025-03-14T09:00:00+00:00"),  # Sat -> Fri
        ("cron(0 9 15W * ? *)", "UTC", "2025-01-01T00:00:00+00:00", "2025-01-15T09:00:00+00:00"),  # a Wednesday
        ("cron(0 9 1W * ? *)", "UTC", "2025-02-20T00:00:00+00:00", "2025-03-03T09:00:00+00:00"),  # Sat 1st -> Mon 3rd
        ("cron(0 9 31W * ? *)", "UTC", "2025-08-01T00:00:00+00:00", "2025-08-29T09:00:00+00:00"),  # Sun 31st -> Fri
        ("cron(0 9 31W * ? *)", "UTC", "2025-09-01T00:00:00+00:00", "2025-10-31T09:00:00+00:00"),  # no 31 Sept
        ("cron(0 9 30W * ? *)", "UTC", "2025-11-01T00:00:00+00:00", "2025-11-28T09:00:00+00:00"),  # Sun 30th, last
        ("cron(0 9 LW * ? *)", "UTC", "2025-08-01T00:00:00+00:00", "2025-08-29T09:00:00+00:00"),
        ("cron(0 9 LW * ? *)", "UTC", "2025-10-01T00:00:00+00:00", "2025-10-31T09:00:00+00:00"),
        # nth weekday of the month
        ("cron(0 9 ? * 2#1 *)", "UTC", "2025-08-05T00:00:00+00:00", "2025-09-01T09:00:00+00:00"),
        ("cron(0 9 ? * 3#2 *)", "UTC", "2025-09-01T00:00:00+00:00", "2025-09-09T09:00:00+00:00"),
        ("cron(0 9 ? * 2#5 *)", "UTC", "2025-04-01T00:00:00+00:00", "2025-06-30T09:00:00+00:00"),
        ("cron(0 9 ? * L *)", "UTC", "2025-09-01T00:00:00+00:00", "2025-09-06T09:00:00+00:00"),  # Saturday
        ("cron(0 9 ? * MON-FRI *)", "UTC", "2025-09-05T10:00:00+00:00", "2025-09-08T09:00:00+00:00"),
        # quarter months
        ("cron(0 6 1 1,4,7,10 ? *)", "Europe/Oslo", "2025-01-01T05:00:00+00:00", "2025-04-01T04:00:00+00:00"),
        ("cron(0 6 1 1,4,7,10 ? *)", "Europe/Oslo", "2025-10-01T04:00:00+00:00", "2026-01-01T05:00:00+00:00"),
        # leap years
        ("cron(0 0 29 2 ? *)", "UTC", "2024-02-29T00:00:00+00:00", "2028-02-29T00:00:00+00:00"),
        ("cron(0 0 ? 2 2#5 *)", "UTC", "2025-01-01T00:00:00+00:00", "2044-02-29T00:00:00+00:00"),
        ("cron(0 0 29 2 ? 2100-2199)", "UTC", "2025-01-01T00:00:00+00:00", "2104-02-29T00:00:00+00:00"),
        # years: far ahead, all past, the calendar's end
        ("cron(0 0 1 1 ? 2199)", "UTC", "2025-01-01T00:00:00+00:00", "2199-01-01T00:00:00+00:00"),
        ("cron(0 0 1 1 ? 2020)", "UTC", "2025-01-01T00:00:00+00:00", None),
        ("cron(0 0 * * ? *)", "UTC", "2199-12-31T00:00:00+00:00", None),
        ("cron(0 0 31 2 ? *)", "UTC", "2025-01-01T00:00:00+00:00", None),
        # whole minutes only: seconds in `after` do not shift the firing
        ("cron(* * * * ? *)", "UTC", "2025-01-01T10:00:30+00:00", "2025-01-01T10:01:00+00:00"),
        ("cron(0/20 * * * ? *)", "Asia/Kolkata", "2025-01-01T10:05:00+00:00", "2025-01-01T10:10:00+00:00"),
    ],
)
def test_next_firing_of_typical_report_schedules(expression, zone, after, expected):
    assert fire(expression, zone, after) == (at(expected) if expected else None)


@pytest.mark.parametrize(
    ("expression", "zone", "after", "expected"),
    [
        # Oslo, 30 March 2025: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day, so it is skipped
        ("cron(30 2 * * ? *)", "Europe/Oslo", "2025-03-29T02:00:00+00:00", "2025-03-31T00:30:00+00:00"),
        ("cron(*/30 * * * ? *)", "Europe/Oslo", "2025-03-30T00:45:00+00:00", "2025-03-30T01:00:00+00:00"),
        # Oslo, 26 October 2025: 03:00 CEST falls back to 02:00 CET; 02:30 fires once, at its first occurrence
        ("cron(30 2 * * ? *)", "Europe/Oslo", "2025-10-25T12:00:00+00:00", "2025-10-26T00:30:00+00:00"),
        ("cron(30 2 * * ? *)", "Europe/Oslo", "2025-10-26T00:30:00+00:00", "2025-10-27T01:30:00+00:00"),
        ("cron(*/30 * * * ? *)", "Europe/Oslo", "2025-10-26T00:30:00+00:00", "2025-10-26T02:00:00+00:00"),
        ("cron(*/30 * * * ? *)", "Europe/Oslo", "2025-10-26T01:10:00+00:00", "2025-10-26T02:00:00+00:00"),
        # New York, 9 March 2025: 02:00 EST jumps to 03:00 EDT
        ("cron(30 2 * * ? *)", "America/New_York", "2025-03-08T12:00:00+00:00", "2025-03-10T06:30:00+00:00"),
        ("cron(0 3 * * ? *)", "America/New_York", "2025-03-08T12:00:00+00:00", "2025-03-09T07:00:00+00:00"),
        # New York, 2 November 2025: 02:00 EDT falls back to 01:00 EST
        ("cron(30 1 * * ? *)", "America/New_York", "2025-11-01T12:00:00+00:00", "2025-11-02T05:30:00+00:00"),
        ("cron(30 1 * * ? *)", "America/New_York", "2025-11-02T05:30:00+00:00", "2025-11-03T06:30:00+00:00"),
        ("cron(0 * * * ? *)", "America/New_York", "2025-11-02T05:00:00+00:00", "2025-11-02T07:00:00+00:00"),
    ],
)
def test_daylight_saving_changes_skip_missing_times_and_fire_repeated_ones_once(expression, zone, after, expected):
    assert fire(expression, zone, after) == at(expected)


def test_start_and_end_bound_the_firings():
    daily = "cron(0 6 * * ? *)"
    after = "2025-01-01T00:00:00+00:00"

    assert fire(daily, "UTC", after, start_at="2025-03-10T12:00:00+00:00") == at("2025-03-11T06:00:00+00:00")
    assert fire(daily, "UTC", after, start_at="2025-03-10T06:00:00+00:00") == at("2025-03-10T06:00:00+00:00")
    assert fire(daily, "UTC", after, start_at="2024-06-01T00:00:00+00:00") == at("2025-01-01T06:00:00+00:00")
    assert fire(daily, "UTC", after, end_at="2025-01-01T06:00:01+00:00") == at("2025-01-01T06:00:00+00:00")
    # Scheduler invokes before its EndDate: a firing at end_at itself is not one.
    assert fire(daily, "UTC", after, end_at="2025-01-01T06:00:00+00:00") is None
    window = {"start_at": "2025-02-01T00:00:00+00:00", "end_at": "2025-02-01T05:00:00+00:00"}
    assert fire(daily, "UTC", after, **window) is None


def test_a_rate_counts_from_its_start_or_else_its_anchor():
    hourly, anchor = "rate(1 hour)", "2025-01-01T10:00:00+00:00"

    # Without a start date Scheduler fires at once, at the anchor, then every interval.
    assert fire(hourly, "UTC", "2025-01-01T09:00:00+00:00", anchor=anchor) == at(anchor)
    assert fire(hourly, "UTC", anchor, anchor=anchor) == at("2025-01-01T11:00:00+00:00")
    assert fire(hourly, "UTC", "2025-01-01T10:30:00+00:00", anchor=anchor) == at("2025-01-01T11:00:00+00:00")
    assert fire(hourly, "UTC", "2025-03-01T10:59:59+00:00", anchor=anchor) == at("2025-03-01T11:00:00+00:00")
    # A start date is the first firing, and the anchor no longer matters.
    quarterly = {"anchor": anchor, "start_at": "2025-02-01T08:07:00+00:00"}
    assert fire("rate(15 minutes)", "UTC", "2025-01-01T00:00:00+00:00", **quarterly) == at("2025-02-01T08:07:00+00:00")
    assert fire("rate(15 minutes)", "UTC", "2025-02-01T08:07:00+00:00", **quarterly) == at("2025-02-01T08:22:00+00:00")
    assert fire("rate(15 minutes)", "UTC", "2025-02-01T09:00:00+00:00", **quarterly) == at("2025-02-01T09:07:00+00:00")
    # The end date stops it.
    ended = {"anchor": anchor, "end_at": "2025-01-01T10:59:00+00:00"}
    assert fire(hourly, "UTC", "2025-01-01T10:00:00+00:00", **ended) is None


def test_a_rate_ignores_the_time_zone_and_its_daylight_saving():
    # rate(1 day) is 24 hours: across Oslo's spring change the local firing time moves from 13:00 to 14:00.
    daily = {"anchor": "2025-03-29T12:00:00+00:00"}
    for zone in ("UTC", "Europe/Oslo", "America/New_York"):
        assert fire("rate(1 day)", zone, "2025-03-30T11:00:00+00:00", **daily) == at("2025-03-30T12:00:00+00:00")


def test_results_are_utc_and_inputs_must_be_aware_and_zones_known():
    firing = fire("cron(0 6 * * ? *)", "Europe/Oslo", "2025-01-01T12:00:00+01:00")
    assert firing is not None and firing.tzinfo is UTC
    daily = parse_expression("cron(0 6 * * ? *)")

    with pytest.raises(ValueError, match="IANA"):
        next_firing(daily, "Europe/Atlantis", after=EPOCH, anchor=EPOCH)
    with pytest.raises(ValueError, match="IANA"):
        next_firing(Rate(1, "hours"), "Nowhere", after=EPOCH, anchor=EPOCH)
    with pytest.raises(ValueError, match="after"):
        next_firing(daily, "UTC", after=datetime(2025, 1, 1), anchor=EPOCH)
    with pytest.raises(ValueError, match="end_at"):
        next_firing(daily, "UTC", after=EPOCH, anchor=EPOCH, end_at=datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 0 29 2 ? *)",
        "cron(0 0 ? * 2#5 *)",
        "cron(0 0 ? 2 2#5 *)",
        "cron(0 0 31 2 ? *)",
        "cron(59 23 31 12 ? 2199)",
        "cron(0 0 1 1 ? 1970)",
        "cron(* * 30W 2 ? *)",
    ],
)
def test_sparse_expressions_are_computed_in_milliseconds(expression):
    parsed = parse_expression(expression)
    started = time.perf_counter()
    next_firing(parsed, "Europe/Oslo", after=at("2025-06-01T00:00:00+00:00"), anchor=EPOCH)
    assert time.perf_counter() - started < 0.05


# --- property: the next firing is what a minute-by-minute search finds --------------------------

Matcher = Callable[[datetime], bool]
HORIZON = timedelta(days=3)
# Each zone with instants its clocks change at (2025), so that `after` moments can straddle one.
TRANSITIONS = {
    "UTC": [],
    "Asia/Kolkata": [],
    "Europe/Oslo": ["2025-03-30T01:00:00+00:00", "2025-10-26T01:00:00+00:00"],
    "America/New_York": ["2025-03-09T07:00:00+00:00", "2025-11-02T06:00:00+00:00"],
    "Australia/Lord_Howe": ["2025-04-05T15:00:00+00:00", "2025-10-04T15:30:00+00:00"],  # half-hour shifts
    "America/Santiago": ["2025-04-06T03:00:00+00:00", "2025-09-07T04:00:00+00:00"],  # at midnight
}


@st.composite
def plain_field(draw: st.DrawFn, low: int, high: int, names: tuple[str, ...] = (), steps: bool = True):
    """A field of `*`, values, ranges and increments, as text and as the set of values it means."""

    def word(value: int) -> str:
        if names and draw(st.booleans()):
            name = names[value - low]
            return draw(st.sampled_from([name, name.lower(), name.title()]))
        return str(value)

    items, chosen = [], set()
    for _ in range(draw(st.integers(1, 3))):
        a, b = sorted(draw(st.lists(st.integers(low, high), min_size=2, max_size=2)))
        kind = draw(st.sampled_from(["*", "value", "range", "step"] if steps else ["*", "value", "range"]))
        if kind == "*":
            items.append("*")
            chosen |= set(range(low, high + 1))
        elif kind == "value":
            items.append(word(a))
            chosen.add(a)
        elif kind == "range":
            items.append(f"{word(a)}-{word(b)}")
            chosen |= set(range(a, b + 1))
        else:
            step = draw(st.integers(1, max(1, (high - low) // 3)))
            base, top = draw(st.sampled_from([("*", (low, high)), (word(a), (a, high)), (f"{a}-{b}", (a, b))]))
            items.append(f"{base}/{step}")
            chosen |= set(range(top[0], top[1] + 1, step))
    return ",".join(items), chosen


def _weekday(day: date) -> int:
    return day.isoweekday() % 7 + 1  # 1 = Sunday


@st.composite
def day_fields(draw: st.DrawFn):
    """(day-of-month, day-of-week, whether a date matches), one of the two fields being `?`."""
    # Plain days often fire within the search horizon; the special forms mostly near a month's end.
    kind = draw(st.sampled_from(["month_days"] * 3 + ["week_days"] * 3 + ["L", "LW", "W", "nL", "#", "week_L"]))

    def length(day: date) -> int:
        return calendar.monthrange(day.year, day.month)[1]

    def weekdays_of(day: date) -> list[int]:
        return [d for d in range(1, length(day) + 1) if day.replace(day=d).weekday() < 5]

    if kind == "month_days":
        text, chosen = draw(plain_field(1, 31))
        return text, "?", lambda day: day.day in chosen
    if kind == "L":
        return "L", "?", lambda day: day.day == length(day)
    if kind == "LW":
        return "LW", "?", lambda day: day.day == weekdays_of(day)[-1]
    if kind == "W":
        n = draw(st.integers(1, 31))
        return f"{n}W", "?", lambda day: n <= length(day) and day.day == min(weekdays_of(day), key=lambda d: abs(d - n))
    names = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
    if kind == "week_days":
        text, chosen = draw(plain_field(1, 7, names, steps=False))
        return "?", text, lambda day: _weekday(day) in chosen
    if kind == "week_L":
        return "?", "L", lambda day: _weekday(day) == 7
    weekday = draw(st.integers(1, 7))
    if kind == "nL":
        return "?", f"{weekday}L", lambda day: _weekday(day) == weekday and day.day + 7 > length(day)
    nth = draw(st.integers(1, 5))
    return "?", f"{weekday}#{nth}", lambda day: _weekday(day) == weekday and (day.day - 1) // 7 + 1 == nth


@st.composite
def crons(draw: st.DrawFn) -> tuple[str, Matcher]:
    minutes, minute_set = draw(plain_field(0, 59))
    # Hours around 02:00, where the clocks of most zones change, next to any hours at all.
    night = st.sampled_from([("2", {2}), ("1-2", {1, 2}), ("0,2", {0, 2}), ("1", {1}), ("0", {0})])
    hours, hour_set = draw(st.one_of(plain_field(0, 23), night))
    month_days, week_days, day_matches = draw(day_fields())
    month_names = tuple(name.upper() for name in calendar.month_abbr[1:])
    months, month_set = draw(st.one_of(st.just(("*", set(range(1, 13)))), plain_field(1, 12, month_names)))
    years, year_set = draw(
        st.sampled_from(
            [("*", set(range(1970, 2200)))] * 2 + [("2024-2026", {2024, 2025, 2026}), ("2020,2025", {2020, 2025})]
        )
    )
    day_ok = lru_cache(maxsize=None)(lambda day: day.month in month_set and day.year in year_set and day_matches(day))

    def matches(wall: datetime) -> bool:
        return wall.minute in minute_set and wall.hour in hour_set and day_ok(wall.date())

    spacing = draw(st.sampled_from([" ", "  ", " \t "]))
    fields = (minutes, hours, month_days, months, week_days, years)
    return f"cron({spacing.join(fields)})", matches


def brute_force(matches: Matcher, zone: ZoneInfo, after: datetime) -> datetime | None:
    """Every UTC minute after `after`, as the zone's clock shows it; a repeated wall time counts only the first time."""
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while moment <= after + HORIZON:
        wall = moment.astimezone(zone)
        if wall.fold == 0 and matches(wall.replace(tzinfo=None)):
            return moment
        moment += timedelta(minutes=1)
    return None


@st.composite
def zones_and_afters(draw: st.DrawFn) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(sorted(TRANSITIONS)))
    where = draw(st.sampled_from(["anywhere", "month end", "clock change"]))
    if where == "clock change" and TRANSITIONS[zone]:
        change = at(draw(st.sampled_from(TRANSITIONS[zone])))
        return zone, change + timedelta(minutes=draw(st.integers(-24 * 60, 60)))
    if where == "month end":  # where L, LW, 6L and 31W fire
        year, month = draw(st.integers(2024, 2026)), draw(st.integers(1, 12))
        last = datetime(year, month, calendar.monthrange(year, month)[1], tzinfo=UTC)
        return zone, last - timedelta(minutes=draw(st.integers(-24 * 60, 5 * 24 * 60)))
    moments = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 28), timezones=st.just(UTC))
    return zone, draw(moments)


@settings(max_examples=200, deadline=None)
@given(cron=crons(), zone_and_after=zones_and_afters())
def test_next_firing_agrees_with_a_minute_by_minute_search(cron, zone_and_after):
    (text, matches), (zone_name, after) = cron, zone_and_after
    zone = ZoneInfo(zone_name)
    parsed = parse_expression(text)
    assert isinstance(parsed, Cron)

    firing = next_firing(parsed, zone_name, after=after, anchor=EPOCH)
    expected = brute_force(matches, zone, after)
    event("fires within the horizon" if expected else "no firing within the horizon")

    if expected is None:
        assert firing is None or firing > after + HORIZON
    else:
        assert firing == expected
    if firing is not None:
        wall = firing.astimezone(zone)
        assert firing > after and firing.tzinfo is UTC
        assert wall.fold == 0 and matches(wall.replace(tzinfo=None))


@settings(max_examples=100, deadline=None)
@given(
    rate=st.builds(Rate, st.integers(1, 500), st.sampled_from(["minutes", "hours", "days"])),
    origin=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)),
    offset=st.timedeltas(min_value=timedelta(days=-30), max_value=timedelta(days=400)),
    with_start=st.booleans(),
)
def test_a_rate_fires_on_its_grid_and_never_skips_a_step(rate, origin, offset, with_start):
    after = origin + offset
    anchor, start_at = (EPOCH, origin) if with_start else (origin, None)

    firing = next_firing(rate, "Europe/Oslo", after=after, anchor=anchor, start_at=start_at)

    assert firing is not None and firing > after
    steps, remainder = divmod(firing - origin, rate.interval)
    assert remainder == timedelta(0) and steps >= 0
    assert steps == 0 or firing - rate.interval <= after
