"""What every feature shares: enums, ids, timestamps, canonical JSON, the parameter rules, file references."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
)


class ServiceModel(BaseModel):
    """The base of the service's models: their validators are built when first used, not when imported.

    A cold start imports every model a function might need; the request it serves uses a few. Building
    each model's validator at import was most of a tenth of a second of the API's cold start.
    """

    model_config = ConfigDict(defer_build=True)


class JobType(StrEnum):
    FEED_INTAKE_EXPORT = "FEED_INTAKE_EXPORT"
    KPI_FEEDING_EXPORT = "KPI_FEEDING_EXPORT"
    TELEMETRY_EXPORT = "TELEMETRY_EXPORT"
    WEIGHVISION_EXPORT = "WEIGHVISION_EXPORT"
    # The periodic activity report an organisation files with its public funder (Bufdir).
    BUFDIR_ACTIVITY_REPORT = "BUFDIR_ACTIVITY_REPORT"


class Compression(StrEnum):
    GZIP = "gzip"


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"  # NDJSON output (one JSON object a line); the API contract calls it json


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Role(StrEnum):
    TENANT_ADMIN = "tenant_admin"
    FARM_MANAGER = "farm_manager"
    HOUSE_OPERATOR = "house_operator"
    VIEWER = "viewer"
    # Other services of the platform (not people): may record a re-export's result. Neither reader nor writer.
    INTERNAL_SERVICE = "internal_service"


WRITER_ROLES = frozenset({Role.TENANT_ADMIN, Role.FARM_MANAGER})
READER_ROLES = frozenset({Role.TENANT_ADMIN, Role.FARM_MANAGER, Role.HOUSE_OPERATOR, Role.VIEWER})
INTERNAL_ROLES = frozenset({Role.INTERNAL_SERVICE})

# Ids reach DynamoDB keys, S3 keys and logs, so they are short and plain.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
JOB_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
ScopeId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]
FilterName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
FilterText = Annotated[str, StringConstraints(max_length=256)]
# NaN and the infinities are refused: JSON has no such numbers, and stored they would come back as null.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
FilterValue = bool | int | FiniteFloat | FilterText | Annotated[list[FilterText], Field(max_length=50)]

# A gzip file is stored as application/gzip and never with Content-Encoding: clients that decode
# Content-Encoding would otherwise unzip it twice.
GZIP_MIME_TYPE = "application/gzip"

MAX_FILTERS = 20
MAX_FILTERS_BYTES = 4096


_CALENDAR_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date_only(value: Any) -> Any:
    # pydantic's lax date parsing also takes numbers and datetimes; a report period is a calendar date.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    # fromisoformat alone also reads ISO week dates ("2025-W01-1") and basic forms ("20250101"): a period
    # stored from those would not read back as the text the caller sent.
    if not isinstance(value, str) or not _CALENDAR_DATE.fullmatch(value):
        raise ValueError("must be a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date in the form YYYY-MM-DD") from None


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]


def format_timestamp(value: datetime) -> str:
    moment = value.astimezone(UTC)
    # The year by hand: strftime leaves a year before 1000 unpadded, which no ISO 8601 reader takes back.
    return f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str, when_used="json")]


def now_utc() -> datetime:
    # Millisecond precision: what the API shows is exactly what is stored.
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# Names the upstream query uses for scope, period, order and paging: a filter must not shadow them.
RESERVED_FILTER_NAMES = frozenset(
    {"tenant_id", "farm_id", "barn_id", "batch_id", "start_date", "end_date", "sort", "limit", "cursor"}
)


def check_filters(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """The rules for a job's filters; shared by new jobs and re-export overrides."""
    if filters is None:
        return None
    if len(filters) > MAX_FILTERS:
        raise ValueError(f"at most {MAX_FILTERS} filters are allowed")
    reserved = sorted(RESERVED_FILTER_NAMES.intersection(filters))
    if reserved:
        raise ValueError(f"{', '.join(reserved)} cannot be a filter: scope, period and paging are fields")
    if len(canonical_json(filters).encode()) > MAX_FILTERS_BYTES:
        raise ValueError(f"filters must not exceed {MAX_FILTERS_BYTES} bytes")
    return filters


def check_period(start_date: date | None, end_date: date | None) -> None:
    """The rules for a report period; shared by new jobs and re-export overrides."""
    if (start_date is None) != (end_date is None):
        raise ValueError("start_date and end_date must be given together")
    if start_date and end_date and end_date < start_date:
        raise ValueError("end_date must be on or after start_date")


class FileCheck(ServiceModel):
    """How the service vouched for a file it did not write (an internal service's re-export result): it read
    the object itself, and its sha256, size and row count are the service's figures, not the caller's."""

    checked_at: datetime
    read_as: ExportFormat
    gzip: bool
    checked: list[str]


class FileReference(ServiceModel):
    """One report file, as lineage keeps it."""

    key: str
    file_name: str | None = None
    mime_type: str | None = None
    size_bytes: int
    sha256: str
    row_count: int | None = None
    check: FileCheck | None = Field(None, description="For a file another service stored: what the service checked")

    @model_serializer(mode="wrap")
    def _without_an_absent_check(self, handler: SerializerFunctionWrapHandler):
        # Only files another service stored carry a check: every other file keeps the shape it always had.
        # No return annotation: with one, pydantic would document the model as any object.
        dumped = handler(self)
        if dumped.get("check") is None:
            dumped.pop("check", None)
        return dumped
