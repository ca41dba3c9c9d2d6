"""Request, response and message models: the shapes that cross the service's edges."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
    model_validator,
)


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
    JSON = "json"  # NDJSON output, as in the seed contract


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
FilterValue = bool | int | float | FilterText | Annotated[list[FilterText], Field(max_length=50)]

MAX_FILTERS = 20
MAX_FILTERS_BYTES = 4096


def _iso_date_only(value: Any) -> Any:
    # pydantic's lax date parsing also takes numbers and datetimes; a report period is a calendar date.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("must be a date in the form YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date in the form YYYY-MM-DD") from None


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]


def format_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


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


class CreateJobRequest(BaseModel):
    """Body of POST /api/v1/reports/jobs."""

    model_config = ConfigDict(extra="forbid")

    job_type: JobType
    format: ExportFormat = ExportFormat.CSV
    compression: Compression | None = Field(None, description="gzip stores the file compressed (name ends in .gz)")
    farm_id: ScopeId | None = None
    barn_id: ScopeId | None = None
    batch_id: ScopeId | None = None
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None
    filters: dict[FilterName, FilterValue] | None = None
    idempotency_key: IdempotencyKey | None = None
    tenant_id: ScopeId | None = Field(
        None,
        description="Ignored for scoping: the tenant always comes from the token. "
        "Accepted for older clients; a value other than the token's tenant is rejected.",
    )

    @field_validator("filters")
    @classmethod
    def _bounded_filters(cls, filters: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_filters(filters)

    @model_validator(mode="after")
    def _coherent_period(self) -> CreateJobRequest:
        check_period(self.start_date, self.end_date)
        return self

    @property
    def period_days(self) -> int | None:
        if self.start_date is None or self.end_date is None:
            return None
        return (self.end_date - self.start_date).days + 1

    def export_parameters(self) -> dict[str, Any]:
        """What determines the report's content: everything but the idempotency key and tenant hint.

        None values are left out so that adding an optional parameter later keeps old hashes valid.
        """
        return self.model_dump(mode="json", exclude={"idempotency_key", "tenant_id"}, exclude_none=True)

    def parameters_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.export_parameters()).encode()).hexdigest()


class Job(BaseModel):
    """A report job as the API returns it: the seed's report_jobs columns plus what this design adds."""

    id: str = Field(examples=["019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f"])
    tenant_id: str
    requested_by: str
    job_type: JobType
    format: ExportFormat
    compression: Compression | None = None
    farm_id: str | None = None
    barn_id: str | None = None
    batch_id: str | None = None
    start_date: date | None = None
    end_date: date | None = None
    filters: dict[str, Any] | None = None
    status: JobStatus
    progress_pct: int = Field(0, ge=0, le=100)
    file_path: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    row_count: int | None = None
    expires_at: Timestamp | None = None
    error_code: str | None = None
    error_message: str | None = None
    idempotency_key: str | None = None
    cancel_requested: bool = Field(
        False, description="A cancel was asked for while running; the generator stops at its next checkpoint."
    )
    phase: str | None = Field(None, description="While running: fetching, then storing")
    rows_written: int | None = Field(None, description="Rows written so far (while running) or in all (when done)")
    started_at: Timestamp | None = None
    notification_sent_at: Timestamp | None = None
    manifest: dict[str, Any] | None = Field(
        None, description="What a re-export needs to reproduce and verify this file: parameters, definition, output"
    )
    reexport_id: str | None = Field(None, description="On a job that regenerates a report: its re-export record")
    reexport_of: str | None = Field(None, description="On a job that regenerates a report: the original job's id")
    active_reexport_id: str | None = Field(
        None, description="On an original report: the re-export pending or running for it, if any"
    )
    created_at: Timestamp
    updated_at: Timestamp


class JobPage(BaseModel):
    items: list[Job]
    next_cursor: str | None = Field(None, description="Pass back as the next_cursor query parameter; null at the end.")


class GenerateJobMessage(BaseModel):
    """The SQS wake-up for the generator. The job item stays the source of truth."""

    tenant_id: str
    job_id: str


class HealthStatus(BaseModel):
    status: str = Field(examples=["ok"])


# --- re-exports (DESIGN "Re-export") ---------------------------------------------------------------------------


class ReexportStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        return self in (ReexportStatus.PENDING, ReexportStatus.RUNNING)


ReexportReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")
]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ObjectKey = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ReexportOverrides(BaseModel):
    """Parameters a re-export may change; the rules are those of a new job. Scope and report type stay."""

    model_config = ConfigDict(extra="forbid")

    format: ExportFormat | None = None
    compression: Compression | None = Field(None, description="gzip, or null for an uncompressed file")
    filters: dict[FilterName, FilterValue] | None = Field(None, description="Replaces the filters; null for none")
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None

    @field_validator("filters")
    @classmethod
    def _bounded_filters(cls, filters: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_filters(filters)

    @model_validator(mode="after")
    def _coherent(self) -> ReexportOverrides:
        for name in ("format", "start_date", "end_date"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null: leave it out to keep the original's")
        if ("start_date" in self.model_fields_set) != ("end_date" in self.model_fields_set):
            raise ValueError("start_date and end_date must be given together")
        check_period(self.start_date, self.end_date)
        return self

    def given(self) -> dict[str, Any]:
        """Only the fields the request named (null included: it removes compression or filters)."""
        return self.model_dump(mode="json", include=self.model_fields_set)


class CreateReexportRequest(BaseModel):
    """Body of POST /api/v1/report-reexports."""

    model_config = ConfigDict(extra="forbid")

    report_id: Annotated[str, StringConstraints(pattern=JOB_ID_PATTERN)] = Field(
        description="The id of the job whose report is regenerated (it must have succeeded)"
    )
    overrides: ReexportOverrides | None = None
    reason: ReexportReason | None = Field(None, description="Why: kept in the report's audit history")


class FileReference(BaseModel):
    """One report file, as lineage keeps it."""

    key: str
    file_name: str | None = None
    mime_type: str | None = None
    size_bytes: int
    sha256: str
    row_count: int | None = None


class StoreFileReference(BaseModel):
    """A result file an internal service stored for a re-export (PUT /api/v1/report-reexports/{id})."""

    model_config = ConfigDict(extra="forbid")

    key: ObjectKey = Field(description="The object key in the reports bucket, under tenants/{your tenant}/")
    size_bytes: int = Field(ge=0)
    sha256: Sha256Hex
    row_count: int = Field(ge=0)


class KeySamples(BaseModel):
    only_in_original: list[dict[str, Any]] = Field(default_factory=list)
    only_in_new: list[dict[str, Any]] = Field(default_factory=list)
    changed: list[dict[str, Any]] = Field(default_factory=list)


class ComparisonSummary(BaseModel):
    """Row differences between the original and the new file, by the report's sort key."""

    compared: bool
    reason: str | None = Field(None, description="Why the files were not compared")
    only_in_original: int | None = None
    only_in_new: int | None = None
    changed: int | None = Field(None, description="Rows with the same key whose other cells differ")
    unchanged: int | None = None
    first_keys: KeySamples | None = Field(None, description="The first few keys of each kind, in sort order")


class ChangedInputs(BaseModel):
    """Which inputs differ from the original's manifest: why the files may differ (null: not known)."""

    definition_version: bool | None = None
    parameters: bool | None = None
    source_watermark: bool | None = None


class Reexport(BaseModel):
    """A re-export record: the lineage between a report and the file that regenerated it."""

    id: str = Field(examples=["019a8f2c-1b3d-7e4f-8a5b-6c7d8e9f0a1b"])
    tenant_id: str
    report_id: str = Field(description="The original job")
    job_id: str = Field(description="The job that regenerates the report")
    status: ReexportStatus
    requested_by: str
    reason: str | None = None
    original_parameters: dict[str, Any]
    effective_parameters: dict[str, Any] = Field(description="The original parameters with the overrides applied")
    overrides: dict[str, Any] | None = None
    original_file: FileReference | None = None
    new_file: FileReference | None = None
    matches_original: bool | None = Field(
        None, description="Byte-identical to the original (by sha256); null until done"
    )
    comparison: ComparisonSummary | None = None
    changed_inputs: ChangedInputs | None = None
    error_code: str | None = None
    error_message: str | None = None
    cancel_requested: bool = False
    created_at: Timestamp
    updated_at: Timestamp
    completed_at: Timestamp | None = None
    notification_sent_at: Timestamp | None = None
    version: int = Field(description="For optimistic locking: send it back as expected_version or If-Match")
    download_url: str | None = Field(None, description="On GET of a succeeded re-export: a fresh presigned URL")
    download_expires_at: Timestamp | None = None


class ReexportPage(BaseModel):
    items: list[Reexport]
    next_cursor: str | None = Field(None, description="Pass back as the next_cursor query parameter; null at the end.")


class UpdateReexportRequest(BaseModel):
    """Body of PUT /api/v1/report-reexports/{id} (internal services only)."""

    model_config = ConfigDict(extra="forbid")

    expected_version: int | None = Field(None, ge=1, description="Or send the version as the If-Match header")
    new_file: StoreFileReference | None = Field(None, description="Store this file as the re-export's result")
    notification_sent: Literal[True] | None = Field(
        None, description="Send the completion notification (SNS, EventBridge) and record that it was sent"
    )

    @model_validator(mode="after")
    def _something_to_do(self) -> UpdateReexportRequest:
        if self.new_file is None and self.notification_sent is None:
            raise ValueError("give new_file, notification_sent or both")
        return self


class HistoryEventType(StrEnum):
    CREATED = "created"
    DOWNLOAD_URL_ISSUED = "download_url_issued"
    REEXPORT_REQUESTED = "reexport_requested"
    REEXPORT_CANCELLED = "reexport_cancelled"
    REEXPORT_COMPLETED = "reexport_completed"


class HistoryEvent(BaseModel):
    """One entry of a report's audit history."""

    id: str = Field(description="A UUIDv7: entries sort by it")
    job_id: str
    event: HistoryEventType
    actor: str = Field(description="Who: a token's sub, signed-link, or the service")
    at: Timestamp
    details: dict[str, Any] = Field(default_factory=dict)


class HistoryPage(BaseModel):
    items: list[HistoryEvent]
    next_cursor: str | None = Field(None, description="Pass back as the next_cursor query parameter; null at the end.")
