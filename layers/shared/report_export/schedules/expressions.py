"""Schedule expressions for recurring report exports, read the way EventBridge Scheduler reads them.

A report schedule is stored with a `cron(...)` or `rate(...)` expression and an IANA time zone, and
EventBridge Scheduler does the firing. This module lets the service validate an expression before it
reaches Scheduler (so the API answers 400 with a useful message instead of failing on CreateSchedule)
and compute when a schedule fires next (to show users, and to reason about periods), with Scheduler's
rules: six cron fields with `1 = SUNDAY`, `?` in exactly one day field, `L`, `W`, `LW`, `#`, and
daylight-saving changes that skip a wall time that does not exist and fire an ambiguous one once.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from report_export.core.models.schedules import time_zone

__all__ = [
    "Cron",
    "DayRule",
    "Expression",
    "InvalidExpression",
    "Rate",
    "canonical_expression",
    "next_firing",
    "parse_expression",
]

CRON_EXAMPLE = "cron(0 6 * * ? *) (06:00 every day)"
RATE_EXAMPLE = "rate(1 day) or rate(6 hours)"
_is_number = re.compile(r"[0-9]+").fullmatch  # str.isdigit would also take digits of other scripts


class InvalidExpression(ValueError):
    """A schedule expression EventBridge Scheduler would refuse; the message is meant for API users."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i

    def value(self, token: str, example: str) -> int:
        if not token:
            raise _cron_error(f"{self.name} is missing a value in a list, range or increment", example)
        if _is_number(token):
            number = int(token)
            if not self.low <= number <= self.high:
                raise _cron_error(f"{self.name} values must be within {self.low}-{self.high}", example)
            return number
        if token.upper() in self.names:
            return self.low + self.names.index(token.upper())
        allowed = f"{self.low}-{self.high}" + (f" or {self.names[0]}-{self.names[-1]}" if self.names else "")
        raise _cron_error(f"{self.name} values must be numbers or names ({allowed})", example)


_MINUTES = _Field("minutes", 0, 59)
_HOURS = _Field("hours", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, tuple(name.upper() for name in calendar.month_abbr[1:]))
_DAY_OF_WEEK = _Field("day-of-week", 1, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
_YEAR = _Field("year", 1970, 2199)


DayKind = Literal["month_days", "last", "last_weekday", "nearest_weekday", "weekdays", "last_of_week", "nth_of_week"]


@dataclass(frozen=True)
class DayRule:
    """Which days of a month a cron expression fires on; `kind` is the field form that chose them.

    kinds: "month_days" (values are days of month), "last" (L), "last_weekday" (LW),
    "nearest_weekday" (values[0]W), "weekdays" (values are days of week, 1 = Sunday),
    "last_of_week" (values[0]L: the last such weekday), "nth_of_week" (values[0]#nth).
    """

    kind: DayKind
    values: tuple[int, ...] = ()
    nth: int = 0

    def days(self, year: int, month: int) -> list[int]:
        first_weekday, length = calendar.monthrange(year, month)  # Monday = 0, as Python counts
        if self.kind == "month_days":
            return [day for day in self.values if day <= length]
        if self.kind == "last":
            return [length]
        if self.kind in ("last_weekday", "nearest_weekday"):
            target = length if self.kind == "last_weekday" else self.values[0]
            if target > length:  # 31W has no day in a 30-day month; it does not move to the 30th
                return []
            weekday = (first_weekday + target - 1) % 7
            if weekday == 5:  # Saturday: the Friday before, unless that leaves the month
                return [target - 1 if target > 1 else target + 2]
            if weekday == 6:  # Sunday: the Monday after, unless that leaves the month
                return [target + 1 if target < length else target - 2]
            return [target]
        weekdays = [(first_weekday + day) % 7 + 1 for day in range(1, length + 1)]  # 1 = Sunday
        if self.kind == "weekdays":
            return [day for day, weekday in enumerate(weekdays, 1) if weekday in self.values]
        matching = [day for day, weekday in enumerate(weekdays, 1) if weekday == self.values[0]]
        if self.kind == "last_of_week":
            return matching[-1:]
        return matching[self.nth - 1 : self.nth]  # "nth_of_week": empty when the month has no 5th one


@dataclass(frozen=True)
class Cron:
    """A parsed `cron(minutes hours day-of-month month day-of-week year)` expression, fields expanded."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: DayRule
    months: tuple[int, ...]
    years: tuple[int, ...]


@dataclass(frozen=True)
class Rate:
    """A parsed `rate(value unit)` expression; `unit` is always the plural."""

    value: int
    unit: str  # "minutes" | "hours" | "days"

    @property
    def interval(self) -> timedelta:
        # A day is 24 hours here, whatever the clocks do, as EventBridge Scheduler counts it.
        return timedelta(**{self.unit: self.value})


Expression = Cron | Rate


def _cron_error(problem: str, example: str = CRON_EXAMPLE) -> InvalidExpression:
    return InvalidExpression(f"Invalid cron expression: {problem}. Example: {example}")


def canonical_expression(text: str) -> str:
    """The expression as EventBridge Scheduler is sent it: one space between cron fields, names in capitals,
    a rate's value without leading zeros and its unit singular for 1 ("rate(1 hour)", "rate(2 hours)").
    InvalidExpression as parse_expression raises it."""
    expression = parse_expression(text)
    if isinstance(expression, Rate):
        unit = expression.unit[:-1] if expression.value == 1 else expression.unit
        return f"rate({expression.value} {unit})"
    body = text.strip()[len("cron(") : -1]
    return "cron(" + " ".join(field.upper() for field in body.split()) + ")"


def parse_expression(text: str) -> Expression:
    """The expression `text` stands for; InvalidExpression says what is wrong with it otherwise."""
    match = re.fullmatch(r"\s*([A-Za-z]+)\((.*)\)\s*", text, re.DOTALL) if isinstance(text, str) else None
    kind = match.group(1) if match else None
    if kind == "at":
        raise InvalidExpression(
            "at(...) is a one-time schedule; recurring report schedules accept only cron(...) and rate(...) "
            f"expressions, e.g. {CRON_EXAMPLE} or {RATE_EXAMPLE}"
        )
    if match is None or kind not in ("cron", "rate"):
        raise InvalidExpression(
            f"A schedule expression must be cron(...) or rate(...), e.g. {CRON_EXAMPLE} or {RATE_EXAMPLE}"
        )
    return _parse_cron(match.group(2)) if kind == "cron" else _parse_rate(match.group(2))


# Ten years: a longer interval would never fire within the years a schedule's window may cover.
_LONGEST_RATE = timedelta(days=3660)
_RATE_UNITS = {"minute": "minutes", "minutes": "minutes", "hour": "hours", "hours": "hours"}
_RATE_UNITS |= {"day": "days", "days": "days"}


def _parse_rate(body: str) -> Rate:
    parts = body.split()
    if len(parts) != 2:
        raise InvalidExpression(f"A rate expression is rate(value unit), e.g. {RATE_EXAMPLE}")
    value, unit = parts
    if not _is_number(value) or int(value) == 0:
        raise InvalidExpression(f"The rate value must be a positive whole number; e.g. {RATE_EXAMPLE}")
    if unit not in _RATE_UNITS:
        raise InvalidExpression(f"The rate unit must be minute(s), hour(s) or day(s); e.g. {RATE_EXAMPLE}")
    plural = _RATE_UNITS[unit]
    if int(value) > _LONGEST_RATE // timedelta(**{plural: 1}):
        raise InvalidExpression(f"A rate must be at most {_LONGEST_RATE.days} days; e.g. {RATE_EXAMPLE}")
    # EventBridge wants "1 hour" but "2 hours"; either spelling is taken here and the plural kept.
    return Rate(int(value), plural)


def _parse_cron(body: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise _cron_error(f"it needs 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}")
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if (day_of_month == "?") == (day_of_week == "?"):
        raise _cron_error(
            "exactly one of day-of-month and day-of-week must be ?: give a value or * in one and ? in the other",
            "cron(0 6 1 * ? *) (the 1st of each month) or cron(0 6 ? * MON *) (every Monday)",
        )
    days = _week_rule(day_of_week) if day_of_month == "?" else _month_rule(day_of_month)
    return Cron(
        minutes=_values(minutes, _MINUTES),
        hours=_values(hours, _HOURS),
        days=days,
        months=_values(month, _MONTH),
        years=_values(year, _YEAR),
    )


def _values(text: str, field: _Field, example: str = CRON_EXAMPLE, steps: bool = True) -> tuple[int, ...]:
    """The sorted values a list of `*`, `a`, `a-b` and (if `steps`) `x/n` items selects."""
    if "?" in text:
        if field in (_DAY_OF_MONTH, _DAY_OF_WEEK):
            raise _cron_error(f"? must be the whole {field.name} field, not part of a list or range", example)
        raise _cron_error(f"? is only allowed in the day-of-month or day-of-week field, not in {field.name}")
    selected: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _cron_error(f"the {field.name} field has an empty list item", example)
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not steps:
                raise _cron_error(f"{field.name} does not take increments (/)", example)
            limit = field.high - field.low + 1
            if not _is_number(step_text) or not 1 <= int(step_text) <= limit:
                raise _cron_error(f"an increment in {field.name} must be a whole number from 1 to {limit}", example)
            step = int(step_text)
        if base == "*":
            start, end = field.low, field.high
        elif "-" in base:
            low_text, _, high_text = base.partition("-")
            start, end = field.value(low_text, example), field.value(high_text, example)
            if start > end:
                # Whether Scheduler wraps a range like 22-2 around is not documented: refuse, not guess.
                raise _cron_error(
                    f"a {field.name} range runs backwards; write a wrap-around as a list, like 22-23,0-2",
                    example,
                )
        else:
            start = field.value(base, example)
            end = field.high if slash else start  # "5/15" counts from 5 up to the field's end
        selected.update(range(start, end + 1, step))
    return tuple(sorted(selected))


def _month_rule(text: str) -> DayRule:
    upper = text.upper()
    if upper == "L":
        return DayRule("last")
    if upper == "LW":
        return DayRule("last_weekday")
    if upper.endswith("W") and _is_number(upper[:-1]):
        return DayRule("nearest_weekday", (_DAY_OF_MONTH.value(upper[:-1], "cron(0 6 15W * ? *)"),))
    if "L" in upper or "W" in upper:
        raise _cron_error(
            "day-of-month is not valid: L, LW and W (as in 15W) stand alone, not in lists or ranges",
            "cron(0 6 L * ? *) (the last day of each month)",
        )
    return DayRule("month_days", _values(text, _DAY_OF_MONTH))


def _week_rule(text: str) -> DayRule:
    upper = text.upper()
    if upper == "L":  # L alone is the last day of the week: Saturday
        return DayRule("weekdays", (7,))
    if "#" in upper:
        day, _, nth = upper.partition("#")
        if "," in upper or "-" in day or not _is_number(nth) or not 1 <= int(nth) <= 5:
            raise _cron_error(
                "day-of-week is not valid: # takes one day and a week number 1-5, alone in the field",
                "cron(0 6 ? * 3#2 *) (the second Tuesday)",
            )
        return DayRule("nth_of_week", (_DAY_OF_WEEK.value(day, "cron(0 6 ? * 3#2 *)"),), int(nth))
    if upper.endswith("L") and upper[:-1] and not any(mark in upper for mark in ",-/*"):
        return DayRule("last_of_week", (_DAY_OF_WEEK.value(upper[:-1], "cron(0 6 ? * 6L *)"),))
    if "L" in upper:  # no day name has an L in it
        raise _cron_error(
            "day-of-week is not valid: L (as in 6L, the last Friday) stands alone in the field",
            "cron(0 6 ? * 6L *) (the last Friday of each month)",
        )
    return DayRule("weekdays", _values(text, _DAY_OF_WEEK, "cron(0 6 ? * MON-FRI *)", steps=False))


def next_firing(
    expression: Expression,
    zone: str,
    *,
    after: datetime,
    anchor: datetime,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> datetime | None:
    """The schedule's first firing strictly after `after`, in UTC; None when it never fires again.

    No firing falls before `start_at` (inclusive) or at or after `end_at` (exclusive, as Scheduler's
    EndDate). A cron expression is read as wall-clock time in `zone`: a time the clocks skip that day
    does not fire, and a time that occurs twice fires once, at its first occurrence. A rate ignores the
    zone and fires every interval from its origin: `start_at` if given, else `anchor` (the schedule's
    creation), the origin itself included, since Scheduler fires a rate schedule at its start date, or
    at once when it has none.
    """
    zone_info = time_zone(zone)
    for name, moment in (("after", after), ("anchor", anchor), ("start_at", start_at), ("end_at", end_at)):
        if moment is not None and moment.utcoffset() is None:
            raise ValueError(f"{name} must carry its time zone")
    if isinstance(expression, Rate):
        origin = start_at if start_at is not None else anchor
        steps = 0 if after < origin else (after - origin) // expression.interval + 1
        firing = (origin + steps * expression.interval).astimezone(UTC)
    else:
        firing = _next_cron(expression, zone_info, after, start_at)
    # Scheduler invokes "before" its EndDate: a firing at the very moment of end_at is not one.
    if firing is None or (end_at is not None and firing >= end_at):
        return None
    return firing


def _next_cron(cron: Cron, zone: tzinfo, after: datetime, start_at: datetime | None) -> datetime | None:
    floor = after if start_at is None or start_at <= after else start_at
    start = floor.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    for wall in _wall_times(cron, start):
        # fold=0 is the first of a repeated wall time, and the one that fires.
        moment = wall.replace(tzinfo=zone).astimezone(UTC)
        if moment.astimezone(zone).replace(tzinfo=None) != wall:
            continue  # the clocks jump over this wall time today
        # Wall times are walked in order and map to increasing instants, so the first one past the floor
        # wins; the few before it are a floor inside the repeated hour of a fall-back night.
        if moment > after and (start_at is None or moment >= start_at):
            return moment
    return None


def _wall_times(cron: Cron, start: datetime) -> Iterator[datetime]:
    """The wall times `cron` names, from `start` (naive, whole minute) on, in order."""
    for year in cron.years:
        if year < start.year:
            continue
        for month in cron.months:
            if (year, month) < (start.year, start.month):
                continue
            for day in cron.days.days(year, month):
                if (year, month, day) < (start.year, start.month, start.day):
                    continue
                same_day = (year, month, day) == (start.year, start.month, start.day)
                for hour in cron.hours:
                    if same_day and hour < start.hour:
                        continue
                    for minute in cron.minutes:
                        if same_day and (hour, minute) < (start.hour, start.minute):
                            continue
                        yield datetime(year, month, day, hour, minute)
