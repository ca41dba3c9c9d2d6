"""The schedules' shapes: what a tenant asks to export on a calendar, the schedule as the API shows it,
its runs, and the firing a schedule sends when it is due."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StringConstraints,
    field_validator,
)

from report_export.core.models.common import (
    ID_PATTERN,
    Compression,
    ExportFormat,
    FilterName,
    FilterValue,
    JobStatus,
    JobType,
    ScopeId,
    ServiceModel,
    Timestamp,
    check_filters,
    format_timestamp,
)


class RelativePeriod(StrEnum):
    PREVIOUS_DAY = "previous_day"
    PREVIOUS_WEEK = "previous_week"  # ISO weeks: Monday to Sunday
    PREVIOUS_MONTH = "previous_month"
    PREVIOUS_QUARTER = "previous_quarter"
    PREVIOUS_YEAR = "previous_year"
    MONTH_TO_DATE = "month_to_date"  # the first of the month to the day of the firing


@cache
def _iana_zone_names() -> frozenset[str]:
    # The names of the shipped database (tzdata), not whatever the host's zoneinfo directory holds:
    # "localtime", "posixrules" or "right/UTC" would make a schedule's times depend on the machine.
    names = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    return frozenset(names) - {"Factory"}


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone; ValueError for a name that is not one."""
    if name not in _iana_zone_names():
        raise ValueError("time_zone must be an IANA time zone name (e.g. Europe/Oslo)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("time_zone must be an IANA time zone name (e.g. Europe/Oslo)") from None


def _known_zone(name: str) -> str:
    time_zone(name)
    return name


TimeZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_known_zone),
    Field(description="IANA time zone the expression and the period's days are read in", examples=["Europe/Oslo"]),
]
# The years EventBridge Scheduler's expressions and windows cover.
EARLIEST_YEAR, LATEST_YEAR = 1970, 2199


_DATE_TIME_TEXT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _date_time_text(value: object) -> object:
    # pydantic would also read a number, or a string of digits, as seconds since 1970; a window is
    # written as a date-time.
    if isinstance(value, datetime) or (isinstance(value, str) and _DATE_TIME_TEXT.match(value)):
        return value
    raise ValueError("must be an ISO 8601 date-time with its offset, e.g. 2027-01-01T00:00:00Z")


def _scheduler_years(value: datetime) -> datetime:
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        moment = None
    if moment is None or not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ValueError(f"must lie between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    # Milliseconds, as every timestamp of the service: what is stored is what Scheduler is sent.
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


AwareTimestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_date_time_text),
    AfterValidator(_scheduler_years),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]
ScheduleId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class ExportDefinition(ServiceModel):
    """What a schedule exports each time it fires: a job's parameters, with a relative period for its dates."""

    model_config = ConfigDict(extra="forbid")

    job_type: JobType
    format: ExportFormat = ExportFormat.CSV
    compression: Compression | None = None
    farm_id: ScopeId | None = None
    barn_id: ScopeId | None = None
    batch_id: ScopeId | None = None
    filters: dict[FilterName, FilterValue] | None = None
    period: RelativePeriod = Field(description="Which calendar dates a firing stands for, counted in time_zone")

    @field_validator("filters")
    @classmethod
    def _bounded_filters(cls, filters: dict[str, FilterValue] | None) -> dict[str, FilterValue] | None:
        return check_filters(filters)


Expression = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, strip_whitespace=True),
    Field(
        description="When it fires: cron(minutes hours day-of-month month day-of-week year) or rate(value unit), "
        "as EventBridge Scheduler reads them",
        examples=["cron(0 6 1 * ? *)", "rate(1 day)"],
    ),
]
# Control characters and the bidirectional overrides would make a description say other than it shows.
_HIDDEN_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _plain_text(value: str) -> str:
    if _HIDDEN_CHARACTERS.search(value):
        raise ValueError("must not hold control characters or text direction overrides")
    return value


Description = Annotated[str, StringConstraints(max_length=256), AfterValidator(_plain_text)]


class ScheduleSpec(ServiceModel):
    """Body of POST /api/v1/reports/schedules, and (with the version read) of PUT: the whole schedule."""

    model_config = ConfigDict(extra="forbid")

    description: Description | None = None
    expression: Expression
    time_zone: TimeZoneName = "UTC"
    enabled: StrictBool = True
    start_at: AwareTimestamp | None = Field(None, description="No firing before this moment (ISO 8601 with offset)")
    end_at: AwareTimestamp | None = Field(None, description="No firing after this moment (ISO 8601 with offset)")
    export: ExportDefinition


class UpdateScheduleRequest(ScheduleSpec):
    """Body of PUT /api/v1/reports/schedules/{id}: the schedule as it should be, at the version read."""

    expected_version: StrictInt | None = Field(
        None, ge=1, description="The version you read (or send it as If-Match); a stale one answers 409"
    )


class ScheduleRun(ServiceModel):
    """One firing of a schedule: the job it made and the period it covers."""

    job_id: str
    scheduled_time: Timestamp
    start_date: date | None = None
    end_date: date | None = None
    status: JobStatus | None = Field(None, description="The job's status now (absent once its record has expired)")


class Schedule(ScheduleSpec):
    """A tenant's schedule as the API returns it."""

    id: str = Field(examples=["019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f"])
    tenant_id: str
    version: int
    created_at: Timestamp
    created_by: str
    updated_at: Timestamp
    updated_by: str
    next_firing_at: Timestamp | None = Field(
        None, description="When it fires next (null when disabled, or when no firing is left before end_at)"
    )
    last_runs: list[ScheduleRun] | None = Field(
        None, description="Its most recent firings, newest first (in the answer of GET of one schedule)"
    )


class SchedulePage(ServiceModel):
    items: list[Schedule]
    next_cursor: str | None = None


class ScheduledExport(ExportDefinition):
    """The input a schedule declared with the stack sends: the whole definition, for a tenant, inline."""

    schedule_id: ScheduleId
    tenant_id: ScopeId
    time_zone: TimeZoneName = "UTC"
    # Filled in by Scheduler (<aws.scheduler.scheduled-time>): the moment the firing stands for.
    scheduled_time: AwareDatetime


class ScheduleFiring(ServiceModel):
    """What EventBridge Scheduler sends when a tenant's schedule is due: only which schedule, and when.

    The definition is read from the schedule's record at that moment, so a firing can never carry a
    definition the record does not hold (or one another tenant wrote).
    """

    model_config = ConfigDict(extra="forbid")

    tenant_id: ScopeId
    schedule_id: ScheduleId
    # Filled in by Scheduler (<aws.scheduler.scheduled-time>): the moment the firing stands for.
    scheduled_time: AwareDatetime
