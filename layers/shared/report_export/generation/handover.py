"""The hand-over to the store-and-notify state machine: an outcome, planned by the one module that
ends jobs, with the announcements that go with it, as the machine's typed execution input."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from report_export.aws import clients, secrets
from report_export.aws.dynamo.codecs import StoredJob
from report_export.aws.multipart import StoredObject
from report_export.aws.s3 import file_expiry, object_stored_at
from report_export.aws.stepfunctions import (
    EventEntry,
    ExecutionInput,
    Notification,
    ResultStateMachine,
    Rollback,
    announcement,
    execution_input,
    request_token,
)
from report_export.aws.stepfunctions import StoredObject as ObjectToDelete
from report_export.core.models.common import FileReference, JobStatus, format_timestamp, now_utc
from report_export.core.models.jobs import Job
from report_export.core.models.reexports import Reexport
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings
from report_export.core.signing import Signer
from report_export.generation import notices
from report_export.generation.manifest import manifest
from report_export.jobs.ending import Failed, Guard, JobEnding, Succeeded
from report_export.jobs.links import DOWNLOAD_TOKEN_PURPOSE, DownloadGrant, DownloadTokens
from report_export.jobs.outcomes import file_of
from report_export.reports import ReportDefinition, definition_for

STORE_FAILED = Failed("STORE_FAILED", "The report was generated but could not be stored")


@dataclass(frozen=True, slots=True)
class ReportFile:
    stored: StoredObject
    file_name: str
    mime_type: str
    row_count: int
    watermark: str | None

    def reference(self) -> FileReference:
        return FileReference(
            key=self.stored.key,
            file_name=self.file_name,
            mime_type=self.mime_type,
            size_bytes=self.stored.size_bytes,
            sha256=self.stored.sha256,
            row_count=self.row_count,
        )


class HandOver:
    def __init__(
        self,
        settings: Settings,
        ending: JobEnding,
        state_machine: ResultStateMachine,
        tokens: DownloadTokens,
        s3: Any,
    ) -> None:
        self._settings = settings
        self._ending = ending
        self._state_machine = state_machine
        self._tokens = tokens
        self._s3 = s3

    def succeeded(self, claimed: StoredJob, report: ReportFile) -> None:
        self._start(self.success_input(claimed, report))

    def failed(
        self, claimed: StoredJob, failure: Failed, *, guard: Guard = Guard.ATTEMPT, handed_over_by: str | None = None
    ) -> None:
        self._start(self.failure_input(claimed, failure, guard=guard, handed_over_by=handed_over_by))
        metrics.add_metric(name="JobsFailed", unit="Count", value=1)
        logger.warning("Job failed", extra={"error_code": failure.code, "error_message": failure.message})

    def success_input(self, claimed: StoredJob, report: ReportFile) -> ExecutionInput:
        job = claimed.job
        definition = definition_for(job.job_type)
        now = now_utc()
        expires_at = self._expiry(report.stored)
        file = report.reference()
        outcome = Succeeded(file, manifest(job, definition, file, watermark=report.watermark), expires_at)
        store = self._ending.plan(claimed, outcome, guard=Guard.ATTEMPT)
        if store.record is not None:
            matching = store.record.matches_original
            metrics.add_metric(
                name="ReexportsMatchingOriginal" if matching else "ReexportsDiffering", unit="Count", value=1
            )
        event, notification = self._ready_notice(job, definition, file, expires_at, store.record, now)
        rollback = self._ending.plan(claimed, STORE_FAILED, guard=Guard.ATTEMPT)
        rollback_event, rollback_notification = notices.failed(
            job, definition, STORE_FAILED.code, STORE_FAILED.message, record=rollback.record
        )
        table, moment = self._settings.table_name, format_timestamp(now)
        return execution_input(
            job,
            claimed.attempt,
            outcome="succeeded",
            store_items=store.items,
            announced=announcement(table, job, store.record, event=event, notification=notification, now=moment),
            stored_object=ObjectToDelete(bucket=report.stored.bucket, key=report.stored.key),
            rollback=Rollback(
                items=rollback.items,
                token=request_token(job, claimed.attempt, "rollback"),
                announcement=announcement(
                    table,
                    job,
                    rollback.record,
                    event=rollback_event,
                    notification=rollback_notification,
                    now=moment,
                    rolled_back=True,
                ),
            ),
        )

    def failure_input(
        self, claimed: StoredJob, failure: Failed, *, guard: Guard = Guard.ATTEMPT, handed_over_by: str | None = None
    ) -> ExecutionInput:
        job = claimed.job
        ending = self._ending.plan(claimed, failure, guard=guard)
        event, notification = notices.failed(
            job, definition_for(job.job_type), failure.code, failure.message, record=ending.record
        )
        return execution_input(
            job,
            claimed.attempt,
            outcome="failed",
            store_items=ending.items,
            announced=announcement(
                self._settings.table_name,
                job,
                ending.record,
                event=event,
                notification=notification,
                now=format_timestamp(now_utc()),
            ),
            handed_over_by=handed_over_by,
        )

    def announce_again(self, ended: StoredJob, *, round_number: int) -> None:
        """Announce a job that ended earlier without its announcement going out (SNS or EventBridge down
        for longer than the state machine retries): the same event and notification, with a fresh link."""
        self._state_machine.start(self.announcement_input(ended, round_number=round_number))

    def announcement_input(self, ended: StoredJob, *, round_number: int) -> ExecutionInput:
        job = ended.job
        definition = definition_for(job.job_type)
        record = self._ending.reexport_of(job)
        now = now_utc()
        file = file_of(job)
        if job.status is JobStatus.SUCCEEDED and file is not None and job.expires_at:
            event, notification = self._ready_notice(job, definition, file, job.expires_at, record, now)
        else:
            event, notification = notices.failed(
                job, definition, job.error_code or "FAILED", job.error_message or "", record=record
            )
        return execution_input(
            job,
            ended.attempt,
            outcome="announce",
            store_items=None,
            announced=announcement(
                self._settings.table_name,
                job,
                record,
                event=event,
                notification=notification,
                now=format_timestamp(now),
            ),
            handed_over_by=f"announce-{round_number}",
        )

    def _ready_notice(
        self,
        job: Job,
        definition: ReportDefinition,
        file: FileReference,
        expires_at: datetime,
        record: Reexport | None,
        now: datetime,
    ) -> tuple[EventEntry, Notification]:
        """The event and e-mail of a ready report, with a signed link that ends with the file at the latest."""
        link_expires_at = now + timedelta(seconds=self._settings.link_ttl_seconds)
        return notices.succeeded(
            job,
            definition,
            file,
            expires_at=expires_at,
            link=self._download_link(job.tenant_id, job.id, min(expires_at, link_expires_at)),
            link_expires_at=link_expires_at,
            record=record,
        )

    def _expiry(self, stored: StoredObject) -> datetime:
        """The file's expires_at, from when S3 created the object (for a multipart upload, when the upload
        began, maybe hours before now): the lifecycle rule counts from then, not from the job's success."""
        stored_at = object_stored_at(self._s3, bucket=stored.bucket, key=stored.key)
        if stored_at is None:
            # Not a failure of the job's data: the attempt is released and the next one uploads again.
            raise RuntimeError(f"the report file {stored.key} is not in the bucket right after its upload")
        return file_expiry(stored_at, self._settings.retention_days)

    def _start(self, execution: ExecutionInput) -> None:
        self._state_machine.start(execution)
        logger.info("Generation finished", extra={"outcome": execution.outcome})

    def _download_link(self, tenant_id: str, job_id: str, expires_at: datetime) -> str:
        token = self._tokens.issue(DownloadGrant(tenant_id=tenant_id, job_id=job_id, expires_at=expires_at))
        base = self._settings.public_api_url.rstrip("/")
        return f"{base}/api/v1/reports/jobs/{job_id}/file?token={token}"


def build_hand_over(settings: Settings, ending: JobEnding) -> HandOver:
    """The hand-over with this cold start's Step Functions and S3 clients and the download-link signer."""
    return HandOver(
        settings,
        ending,
        ResultStateMachine(clients.stepfunctions(), settings.state_machine_arn),
        DownloadTokens(
            Signer(secrets.secret_source(settings.signing_secret_parameter), purpose=DOWNLOAD_TOKEN_PURPOSE)
        ),
        clients.s3(),
    )
