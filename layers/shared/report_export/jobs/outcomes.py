"""How a job can end, and what each way writes on the job: the outcomes the one ending module
(report_export.jobs.ending) plans into transactions, and how an outcome is read back from a job that
has already ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from report_export.core.history import SERVICE_ACTOR
from report_export.core.models.common import FileReference, JobStatus, canonical_json, format_timestamp
from report_export.core.models.jobs import Job
from report_export.core.models.reexports import ReexportStatus


@dataclass(frozen=True, slots=True)
class Succeeded:
    file: FileReference
    manifest: dict[str, Any] | None
    # Until when the file is kept (report_export.aws.s3.file_expiry): the job's and its re-export's expires_at.
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Failed:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Cancelled:
    by: str


@dataclass(frozen=True, slots=True)
class Superseded:
    """An internal service stored the re-export's result: the job regenerating it is cancelled."""

    file: FileReference
    by: str
    # Until when the file is kept, from its refreshed creation date: the re-export's expires_at (no job carries it).
    expires_at: datetime


Outcome = Succeeded | Failed | Cancelled | Superseded


def job_changes(outcome: Outcome, now: str) -> dict[str, Any]:
    """What the job item says once it has ended so."""
    if isinstance(outcome, Succeeded):
        file = outcome.file
        return {
            "status": JobStatus.SUCCEEDED,
            "phase": None,
            "progress_pct": 100,
            "rows_written": file.row_count,
            "row_count": file.row_count,
            "file_path": file.key,
            "file_name": file.file_name,
            "mime_type": file.mime_type,
            "size_bytes": file.size_bytes,
            "sha256": file.sha256,
            "expires_at": format_timestamp(outcome.expires_at) if outcome.expires_at else None,
            "manifest_json": canonical_json(outcome.manifest),
            "updated_at": now,
        }
    if isinstance(outcome, Failed):
        return {
            "status": JobStatus.FAILED,
            "phase": None,
            "error_code": outcome.code,
            "error_message": outcome.message,
            "updated_at": now,
        }
    return {"status": JobStatus.CANCELLED, "phase": None, "updated_at": now}


def outcome_of(job: Job) -> Outcome:
    """How a job that has already ended ended, as an outcome (what a record left active ends as)."""
    if job.status is JobStatus.CANCELLED:
        return Cancelled(by=SERVICE_ACTOR)
    file = file_of(job)
    if job.status is JobStatus.SUCCEEDED and file is not None:
        return Succeeded(file, job.manifest, job.expires_at)
    return Failed(job.error_code or "INTERNAL", job.error_message or "The re-export's job ended without it")


def ending_status(outcome: Outcome) -> ReexportStatus:
    """How a re-export ends when its job ends so."""
    if isinstance(outcome, Failed):
        return ReexportStatus.FAILED
    if isinstance(outcome, Cancelled):
        return ReexportStatus.CANCELLED
    return ReexportStatus.SUCCEEDED


def file_of(job: Job) -> FileReference | None:
    if not job.file_path or job.sha256 is None or job.size_bytes is None:
        return None
    return FileReference(
        key=job.file_path,
        file_name=job.file_name,
        mime_type=job.mime_type,
        size_bytes=job.size_bytes,
        sha256=job.sha256,
        row_count=job.row_count,
    )
