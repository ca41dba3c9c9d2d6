"""The jobs' shapes: the create request, the job, its list page and the generator's wake-up message."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from report_export.core.models.common import (
    Compression,
    ExportFormat,
    FilterName,
    FilterValue,
    IdempotencyKey,
    IsoDate,
    JobStatus,
    JobType,
    ScopeId,
    ServiceModel,
    Timestamp,
    canonical_json,
    check_filters,
    check_period,
)

# The idempotency keys of the jobs schedules make (one per schedule, period and definition).
SCHEDULED_KEY_PREFIX = "schedule:"


# The phase of a running job between two invocations (generation.continuation).
CONTINUING = "continuing"


class CreateJobRequest(ServiceModel):
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
    idempotency_key: IdempotencyKey | None = Field(
        None,
        description="Makes a retried create answer the job it made. Keys beginning with "
        f"`{SCHEDULED_KEY_PREFIX}` are reserved for the jobs schedules make.",
    )
    tenant_id: ScopeId | None = Field(
        None,
        description="Ignored for scoping: the tenant always comes from the token. "
        "Accepted for older clients; a value other than the token's tenant is rejected.",
    )

    @field_validator("filters")
    @classmethod
    def _bounded_filters(cls, filters: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_filters(filters)

    @field_validator("idempotency_key")
    @classmethod
    def _not_a_schedules_key(cls, key: str | None) -> str | None:
        # A client holding a schedule's key could claim its period first: the firing would then be refused
        # (other parameters) or adopt the client's job (the same ones) for good.
        if key is not None and key.startswith(SCHEDULED_KEY_PREFIX):
            raise ValueError(f"keys beginning with {SCHEDULED_KEY_PREFIX} are reserved for scheduled exports")
        return key

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


class HeldFile(ServiceModel):
    job_id: str = Field(description="The job the file belongs to (the report, or one of its re-exports)")
    key: str
    version_id: str = Field(description="The S3 version under legal hold: it cannot be deleted while held")


class LegalHold(ServiceModel):
    """A legal hold: the report's file and every file of its lineage kept, whatever their expiry says."""

    report_id: str = Field(description="The report the hold was placed on: this job, or the original it re-exports")
    reason: str
    placed_by: str
    placed_at: Timestamp
    files: list[HeldFile]

    def version_of(self, key: str) -> str | None:
        return next((held.version_id for held in self.files if held.key == key), None)


class LegalHoldRequest(ServiceModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] = Field(
        description="Why the files are held (a case, an audit, a request); recorded in the report's history",
        examples=["Audit 2026-14 by the funder: keep every file of the report"],
    )


class Job(ServiceModel):
    """A report job as the API returns it: the report_jobs columns of the API
    contract plus lineage, progress and manifest fields."""

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
    phase: str | None = Field(
        None,
        description=(
            "While running: fetching, then storing; continuing between two invocations of a report too large "
            "for one (its file so far is kept, and the next invocation goes on from there)"
        ),
    )
    rows_written: int | None = Field(None, description="Rows written so far (while running) or in all (when done)")
    started_at: Timestamp | None = None
    notification_sent_at: Timestamp | None = None
    manifest: dict[str, Any] | None = Field(
        None, description="What a re-export needs to reproduce and verify this file: parameters, definition, output"
    )
    reexport_id: str | None = Field(None, description="On a job that regenerates a report: its re-export record")
    reexport_of: str | None = Field(None, description="On a job that regenerates a report: the original job's id")
    schedule_id: str | None = Field(None, description="On a job a schedule created: that schedule's id")
    active_reexport_id: str | None = Field(
        None, description="On an original report: the re-export pending or running for it, if any"
    )
    legal_hold: LegalHold | None = Field(
        None, description="While held: nothing deletes the file, and downloads work past expires_at"
    )
    created_at: Timestamp
    updated_at: Timestamp


class JobPage(ServiceModel):
    items: list[Job]
    next_cursor: str | None = Field(None, description="Pass back as the next_cursor query parameter; null at the end.")


class GenerateJobMessage(ServiceModel):
    """The SQS wake-up for the generator. The job item stays the source of truth."""

    tenant_id: str
    job_id: str


class HealthStatus(ServiceModel):
    status: str = Field(examples=["ok"])
