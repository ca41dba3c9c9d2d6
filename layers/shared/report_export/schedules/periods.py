"""A schedule's relative period, made concrete: the calendar dates a firing stands for, in the
schedule's time zone (a report of "the previous day" in Oslo is not the previous day in UTC)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from report_export.core.models.schedules import RelativePeriod, time_zone


def period_dates(period: RelativePeriod, fired_at: datetime, zone: str) -> tuple[date, date]:
    """(start_date, end_date), both inclusive, for a firing at `fired_at` (aware) in `zone`."""
    if fired_at.tzinfo is None:
        raise ValueError("fired_at must carry its time zone")
    today = fired_at.astimezone(time_zone(zone)).date()
    if period is RelativePeriod.PREVIOUS_DAY:
        day = today - timedelta(days=1)
        return day, day
    if period is RelativePeriod.PREVIOUS_WEEK:
        monday = today - timedelta(days=today.weekday() + 7)
        return monday, monday + timedelta(days=6)
    if period is RelativePeriod.PREVIOUS_MONTH:
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if period is RelativePeriod.PREVIOUS_QUARTER:
        quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        last = quarter_start - timedelta(days=1)
        return date(last.year, 3 * ((last.month - 1) // 3) + 1, 1), last
    if period is RelativePeriod.PREVIOUS_YEAR:
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    return today.replace(day=1), today


# The most days each period can cover, whatever the month or year it falls in.
_LONGEST_DAYS = {
    RelativePeriod.PREVIOUS_DAY: 1,
    RelativePeriod.PREVIOUS_WEEK: 7,
    RelativePeriod.PREVIOUS_MONTH: 31,
    RelativePeriod.PREVIOUS_QUARTER: 92,
    RelativePeriod.PREVIOUS_YEAR: 366,
    RelativePeriod.MONTH_TO_DATE: 31,
}


def longest_days(period: RelativePeriod) -> int:
    return _LONGEST_DAYS[period]
