"""The re-exports' shapes: the request and its overrides, the record with its lineage, the internal-service PUT."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from report_export.core.models.common import (
    JOB_ID_PATTERN,
    Compression,
    ExportFormat,
    FileReference,
    FilterName,
    FilterValue,
    IsoDate,
    ServiceModel,
    Timestamp,
    check_filters,
    check_period,
)


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


class ReexportOverrides(ServiceModel):
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


class CreateReexportRequest(ServiceModel):
    """Body of POST /api/v1/report-reexports."""

    model_config = ConfigDict(extra="forbid")

    report_id: Annotated[str, StringConstraints(pattern=JOB_ID_PATTERN)] = Field(
        description="The id of the job whose report is regenerated (it must have succeeded)"
    )
    overrides: ReexportOverrides | None = None
    reason: ReexportReason | None = Field(None, description="Why: kept in the report's audit history")


class StoreFileReference(ServiceModel):
    """A result file an internal service stored for a re-export (PUT /api/v1/report-reexports/{id})."""

    model_config = ConfigDict(extra="forbid")

    key: ObjectKey = Field(description="The object key in the reports bucket, under tenants/{your tenant}/")
    size_bytes: int = Field(ge=0)
    sha256: Sha256Hex
    row_count: int = Field(ge=0)


class KeySamples(ServiceModel):
    only_in_original: list[dict[str, Any]] = Field(default_factory=list)
    only_in_new: list[dict[str, Any]] = Field(default_factory=list)
    changed: list[dict[str, Any]] = Field(default_factory=list)


class ComparisonSummary(ServiceModel):
    """Row differences between the original and the new file, by the report's sort key."""

    compared: bool
    reason: str | None = Field(None, description="Why the files were not compared")
    only_in_original: int | None = None
    only_in_new: int | None = None
    changed: int | None = Field(None, description="Rows with the same key whose other cells differ")
    unchanged: int | None = None
    first_keys: KeySamples | None = Field(None, description="The first few keys of each kind, in sort order")


class ChangedInputs(ServiceModel):
    """Which inputs differ from the original's manifest: why the files may differ (null: not known)."""

    definition_version: bool | None = None
    parameters: bool | None = None
    source_watermark: bool | None = None


class Reexport(ServiceModel):
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
    expires_at: Timestamp | None = Field(
        None,
        description="Until when the new file is kept: GET hands out no download_url after it (re-export again). "
        "Set when the re-export succeeds; the bucket keeps the file at least until then",
    )
    notification_sent_at: Timestamp | None = None
    version: int = Field(description="For optimistic locking: send it back as expected_version or If-Match")
    download_url: str | None = Field(None, description="On GET of a succeeded re-export: a fresh presigned URL")
    download_expires_at: Timestamp | None = None


class ReexportPage(ServiceModel):
    items: list[Reexport]
    next_cursor: str | None = Field(None, description="Pass back as the next_cursor query parameter; null at the end.")


class UpdateReexportRequest(ServiceModel):
    """Body of PUT /api/v1/report-reexports/{id} (internal services only)."""

    # The schema says what the validator below requires: new_file, notification_sent (true), or both.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["new_file"], "properties": {"new_file": {"type": "object"}}},
                {"required": ["notification_sent"], "properties": {"notification_sent": {"const": True}}},
            ]
        },
    )

    expected_version: StrictInt | None = Field(None, ge=1, description="Or send the version as the If-Match header")
    new_file: StoreFileReference | None = Field(None, description="Store this file as the re-export's result")
    notification_sent: Literal[True] | None = Field(
        None, description="Send the completion notification (SNS, EventBridge) and record that it was sent"
    )

    @model_validator(mode="after")
    def _something_to_do(self) -> UpdateReexportRequest:
        if self.new_file is None and self.notification_sent is None:
            raise ValueError("give new_file, notification_sent or both")
        return self
