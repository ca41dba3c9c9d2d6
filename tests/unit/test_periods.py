"""Relative periods made concrete: month ends, leap years, DST changes and time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from report_export.core.models.schedules import RelativePeriod
from report_export.schedules.periods import longest_days, period_dates

ZONES = ["UTC", "Europe/Oslo", "America/New_York", "Pacific/Auckland", "Asia/Kolkata", "Pacific/Kiritimati"]
FIRINGS = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC))


@pytest.mark.parametrize(
    ("period", "fired_at", "zone", "expected"),
    [
        (RelativePeriod.PREVIOUS_DAY, "2024-03-01T02:00:00+00:00", "UTC", ("2024-02-29", "2024-02-29")),
        (RelativePeriod.PREVIOUS_MONTH, "2024-03-01T02:00:00+00:00", "UTC", ("2024-02-01", "2024-02-29")),
        (RelativePeriod.PREVIOUS_MONTH, "2023-03-01T02:00:00+00:00", "UTC", ("2023-02-01", "2023-02-28")),
        (RelativePeriod.PREVIOUS_MONTH, "2025-01-01T00:30:00+00:00", "UTC", ("2024-12-01", "2024-12-31")),
        # 23:30 UTC on the last of the month is already the first in Oslo: the previous month is that one.
        (RelativePeriod.PREVIOUS_MONTH, "2025-03-31T23:30:00+00:00", "Europe/Oslo", ("2025-03-01", "2025-03-31")),
        (RelativePeriod.PREVIOUS_MONTH, "2025-03-31T23:30:00+00:00", "UTC", ("2025-02-01", "2025-02-28")),
        # The night the clocks go forward in Oslo (30 March 2025) and back (26 October 2025).
        (RelativePeriod.PREVIOUS_DAY, "2025-03-30T01:30:00+00:00", "Europe/Oslo", ("2025-03-29", "2025-03-29")),
        (RelativePeriod.PREVIOUS_DAY, "2025-10-26T00:30:00+00:00", "Europe/Oslo", ("2025-10-25", "2025-10-25")),
        (RelativePeriod.PREVIOUS_WEEK, "2025-01-01T12:00:00+00:00", "UTC", ("2024-12-23", "2024-12-29")),
        (RelativePeriod.PREVIOUS_QUARTER, "2025-01-15T12:00:00+00:00", "UTC", ("2024-10-01", "2024-12-31")),
        (RelativePeriod.PREVIOUS_QUARTER, "2024-05-31T12:00:00+00:00", "UTC", ("2024-01-01", "2024-03-31")),
        (RelativePeriod.PREVIOUS_YEAR, "2025-01-01T00:00:00+00:00", "Pacific/Auckland", ("2024-01-01", "2024-12-31")),
        (RelativePeriod.PREVIOUS_YEAR, "2025-01-01T00:00:00+00:00", "America/New_York", ("2023-01-01", "2023-12-31")),
        (RelativePeriod.MONTH_TO_DATE, "2024-02-29T18:00:00+00:00", "UTC", ("2024-02-01", "2024-02-29")),
    ],
)
def test_known_firings(period, fired_at, zone, expected):
    start, end = period_dates(period, datetime.fromisoformat(fired_at), zone)

    assert (start.isoformat(), end.isoformat()) == expected


@given(fired_at=FIRINGS, zone=st.sampled_from(ZONES), period=st.sampled_from(list(RelativePeriod)))
def test_every_period_is_a_whole_span_that_ends_by_the_day_of_the_firing(fired_at, zone, period):
    start, end = period_dates(period, fired_at, zone)
    today = fired_at.astimezone(ZoneInfo(zone)).date()
    assert start <= end
    if period is RelativePeriod.MONTH_TO_DATE:
        assert (start, end) == (today.replace(day=1), today)
    else:
        assert end < today  # a previous period never includes the day it is fired on
        assert end == today - timedelta(days=1) or period is not RelativePeriod.PREVIOUS_DAY
    lengths = {
        RelativePeriod.PREVIOUS_DAY: {1},
        RelativePeriod.PREVIOUS_WEEK: {7},
        RelativePeriod.PREVIOUS_MONTH: {28, 29, 30, 31},
        RelativePeriod.PREVIOUS_QUARTER: {90, 91, 92},
        RelativePeriod.PREVIOUS_YEAR: {365, 366},
    }
    if period in lengths:
        assert (end - start).days + 1 in lengths[period]
    if period in (RelativePeriod.PREVIOUS_MONTH, RelativePeriod.PREVIOUS_QUARTER, RelativePeriod.PREVIOUS_YEAR):
        assert start.day == 1 and (end + timedelta(days=1)).day == 1
    if period is RelativePeriod.PREVIOUS_WEEK:
        assert (start.weekday(), end.weekday()) == (0, 6)


@given(fired_at=FIRINGS, zone=st.sampled_from(ZONES), period=st.sampled_from(list(RelativePeriod)))
def test_a_refiring_moments_later_names_the_same_period_unless_the_local_day_changed(fired_at, zone, period):
    later = fired_at + timedelta(minutes=5)
    same_day = fired_at.astimezone(ZoneInfo(zone)).date() == later.astimezone(ZoneInfo(zone)).date()
    if same_day:
        assert period_dates(period, fired_at, zone) == period_dates(period, later, zone)


@given(fired_at=FIRINGS, zone=st.sampled_from(ZONES), period=st.sampled_from(list(RelativePeriod)))
def test_no_period_is_ever_longer_than_its_longest(fired_at, zone, period):
    start, end = period_dates(period, fired_at, zone)

    assert (end - start).days + 1 <= longest_days(period)


@pytest.mark.parametrize(
    ("period", "fired_at"),
    [
        (RelativePeriod.PREVIOUS_MONTH, datetime(2025, 9, 1, 6, tzinfo=UTC)),  # August
        (RelativePeriod.PREVIOUS_QUARTER, datetime(2025, 10, 1, 6, tzinfo=UTC)),  # July to September
        (RelativePeriod.PREVIOUS_YEAR, datetime(2025, 1, 1, 6, tzinfo=UTC)),  # 2024, a leap year
        (RelativePeriod.MONTH_TO_DATE, datetime(2025, 1, 31, 6, tzinfo=UTC)),
        (RelativePeriod.PREVIOUS_WEEK, datetime(2025, 1, 6, 6, tzinfo=UTC)),
        (RelativePeriod.PREVIOUS_DAY, datetime(2025, 1, 6, 6, tzinfo=UTC)),
    ],
)
def test_the_longest_is_reached(period, fired_at):
    start, end = period_dates(period, fired_at, "UTC")

    assert (end - start).days + 1 == longest_days(period)


def test_a_zone_that_does_not_exist_is_refused_and_a_naive_time_too():
    with pytest.raises(ValueError, match="IANA"):
        period_dates(RelativePeriod.PREVIOUS_DAY, datetime(2025, 1, 1, tzinfo=UTC), "Mars/Olympus")
    with pytest.raises(ValueError, match="time zone"):
        period_dates(RelativePeriod.PREVIOUS_DAY, datetime(2025, 1, 1), "UTC")


def test_consecutive_previous_months_tile_the_calendar():
    firings = [datetime(2023, month, 1, 6, tzinfo=UTC) for month in range(1, 13)]
    spans = [period_dates(RelativePeriod.PREVIOUS_MONTH, firing, "UTC") for firing in firings]

    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start == end + timedelta(days=1)
    assert spans[0] == (date(2022, 12, 1), date(2022, 12, 31))
