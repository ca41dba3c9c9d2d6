"""What a finished job says to subscribers: the EventBridge event and the notification e-mail.
A job that regenerates a report says it with the re-export's lineage."""

from __future__ import annotations

from datetime import datetime

from report_export.aws.stepfunctions import EventEntry, Notification
from report_export.core.models.common import FileReference, JobStatus, format_timestamp
from report_export.core.models.jobs import Job
from report_export.core.models.reexports import Reexport
from report_export.reexports.lineage import lineage_summary, lineage_text
from report_export.reports import ReportDefinition


def succeeded(
    job: Job,
    definition: ReportDefinition,
    file: FileReference,
    *,
    expires_at: datetime,
    link: str,
    link_expires_at: datetime,
    record: Reexport | None,
) -> tuple[EventEntry, Notification]:
    period = _period_text(job)
    detail = {
        **_about(job, JobStatus.SUCCEEDED),
        "file_name": file.file_name,
        "size_bytes": file.size_bytes,
        "sha256": file.sha256,
        "row_count": file.row_count,
        "expires_at": format_timestamp(expires_at),
    }
    message = (
        f"Your report is ready.\n\n"
        f"Report: {definition.title}{period}\n"
        f"File: {file.file_name} ({file.row_count} rows, {file.size_bytes} bytes)\n"
        f"SHA-256: {file.sha256}\n"
        f"Download: {link}\n\n"
        f"The link works until {format_timestamp(min(expires_at, link_expires_at))}; "
        f"the file is kept until {format_timestamp(expires_at)}.\n"
        f"Job id: {job.id}\n"
    )
    subject = f"{'Report re-exported' if record else 'Report ready'}: {definition.title}{period}"
    return _with_lineage(job, JobStatus.SUCCEEDED, "Report Job Succeeded", detail, subject, message, record)


def failed(
    job: Job, definition: ReportDefinition, code: str, message: str, *, record: Reexport | None
) -> tuple[EventEntry, Notification]:
    period = _period_text(job)
    detail = {
        **_about(job, JobStatus.FAILED),
        "error_code": code,
        "error_message": message,
    }
    text = f"Your report could not be produced.\n\nReport: {definition.title}{period}\nReason: {code}: {message}\n"
    subject = f"{'Re-export failed' if record else 'Report failed'}: {definition.title}{period}"
    return _with_lineage(
        job, JobStatus.FAILED, "Report Job Failed", detail, subject, f"{text}Job id: {job.id}\n", record
    )


def _with_lineage(
    job: Job,
    status: JobStatus,
    detail_type: str,
    detail: dict,
    subject: str,
    message: str,
    record: Reexport | None,
) -> tuple[EventEntry, Notification]:
    if record is not None:
        detail = {**detail, "reexport": lineage_summary(record)}
        message = f"{message}\n{lineage_text(record)}"
    attributes = {
        "tenant_id": job.tenant_id,
        "status": status.value,
        "job_type": job.job_type.value,
        # A notice with a signed link downloads the file without login: the operator-wide subscription's filter
        # keeps those to the tenant's own endpoints.
        "carries_link": "true" if status is JobStatus.SUCCEEDED else "false",
    }
    return (
        EventEntry(detail_type=detail_type, detail=detail),
        Notification(subject=subject, message=message, attributes=attributes),
    )


def _about(job: Job, status: JobStatus) -> dict[str, str]:
    return {
        "tenant_id": job.tenant_id,
        "job_id": job.id,
        "job_type": job.job_type.value,
        "status": status.value,
        "requested_by": job.requested_by,
    }


def _period_text(job: Job) -> str:
    if job.start_date and job.end_date:
        return f" {job.start_date.isoformat()} to {job.end_date.isoformat()}"
    return ""
