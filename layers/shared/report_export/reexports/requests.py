"""Re-export requests: regenerate a succeeded report from its stored parameters (POST), read and list
re-exports, and cancel one.

`reexport_report` writes, in one transaction, the claim on the original report (so concurrent
requests give one re-export), the re-export record, the job that regenerates the report and the
history entries; the job then runs through the generation pipeline like any other, and ends with
its re-export in one transaction.
"""

from __future__ import annotations

import posixpath
import random
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import ValidationError
from uuid6 import uuid7

from report_export.aws import clients
from report_export.aws.dynamo.codecs import StoredJob
from report_export.aws.dynamo.table import StaleWrite
from report_export.aws.sqs import GenerateQueue
from report_export.core.auth import Principal
from report_export.core.errors import (
    ConcurrentUpdate,
    JobNotCancellable,
    NotFound,
    ReexportNotCancellable,
    ReportExpired,
    ReportFileGone,
    ReportNotReexportable,
    ValidationFailed,
    describe_validation_errors,
)
from report_export.core.history import HistoryEventType, new_event
from report_export.core.models.common import JobStatus, now_utc
from report_export.core.models.jobs import CreateJobRequest, Job
from report_export.core.models.reexports import Reexport, ReexportOverrides, ReexportStatus
from report_export.core.observability import logger, metrics
from report_export.core.settings import get_settings
from report_export.jobs.downloads import DownloadService, download_service
from report_export.jobs.outcomes import file_of
from report_export.jobs.service import JobService, job_service
from report_export.reexports.records import Records, build_records
from report_export.reexports.repair import Repair

# Conditional writes race with other requests and with the generator: read again a few times, with a jittered
# backoff between tries (twenty users at once collide in DynamoDB's transactions), then give up.
_ATTEMPTS = 6
_BACKOFF_BASE_SECONDS = 0.02
_BACKOFF_CAP_SECONDS = 0.5
_PARAMETER_FIELDS = {"job_type", "format", "compression", "farm_id", "barn_id", "batch_id", "start_date", "end_date"}


@dataclass(frozen=True, slots=True)
class ReexportOutcome:
    record: Reexport
    replayed: bool


@dataclass(frozen=True, slots=True)
class ReexportCancelOutcome:
    record: Reexport
    # False when the job is running: the cancel is recorded and the generator stops at its next checkpoint.
    completed: bool


def job_parameters(job: Job) -> dict[str, Any]:
    """What determined a job's content, in the form of a new job's request (nulls left out)."""
    parameters = job.model_dump(mode="json", include=_PARAMETER_FIELDS, exclude_none=True)
    if job.filters is not None:
        parameters["filters"] = job.filters
    return parameters


class ReexportRequests:
    def __init__(
        self,
        records: Records,
        repair: Repair,
        queue: GenerateQueue,
        jobs: JobService,
        downloads: DownloadService,
    ) -> None:
        self._records = records
        self._repair = repair
        self._queue = queue
        self._jobs = jobs
        self._downloads = downloads

    def reexport_report(
        self,
        principal: Principal,
        report_id: str,
        *,
        overrides: ReexportOverrides | None = None,
        reason: str | None = None,
    ) -> ReexportOutcome:
        """Start regenerating a succeeded report, or answer the re-export already pending or running for it."""
        for attempt in range(_ATTEMPTS):
            if attempt:
                _backoff(attempt)
            original = self._records.report(principal, report_id)
            if original.job.active_reexport_id:
                active = self._active(principal, original)
                if active is not None:
                    return ReexportOutcome(active, replayed=True)
                continue  # the active record was left over by a job that had finished: repaired, read again
            if original.job.status is not JobStatus.SUCCEEDED:
                raise ReportNotReexportable(
                    f"Only a report that succeeded can be re-exported; this one is {original.job.status.value}"
                )
            # Its job counts among the tenant's active ones like any other (also when a full tenant is what
            # refused the transaction below: the check on the next pass answers 429).
            self._jobs.check_active_capacity(principal.tenant_id)
            try:
                record, job = self._create(principal, original, overrides, reason)
            except StaleWrite:
                continue  # another request claimed the report, or it changed: read it again
            self._wake(job)
            return ReexportOutcome(record, replayed=False)
        raise ConcurrentUpdate("The report changed while the re-export was being requested; try again")

    def build_export_params(
        self, historical_record: Job, overrides: ReexportOverrides | None = None
    ) -> CreateJobRequest:
        """The original's period, scope and options with the overrides applied, validated as a new job's."""
        requested = {**job_parameters(historical_record), **(overrides.given() if overrides else {})}
        try:
            parameters = CreateJobRequest.model_validate(requested)
        except ValidationError as error:
            raise ValidationFailed(
                f"the re-export's parameters are not valid: {describe_validation_errors(error.errors())}"
            ) from None
        self._jobs.check_period_length(parameters)
        return parameters

    def get_reexport(self, principal: Principal, reexport_id: str) -> Reexport:
        """The record; once it succeeded, while its file is there and has not expired, with a fresh download URL
        (an audit event)."""
        record = self._records.load(principal, reexport_id).record
        if record.status is not ReexportStatus.SUCCEEDED or record.new_file is None:
            return record
        new_file = record.new_file
        try:
            presigned = self._downloads.file_link(
                record.tenant_id,
                record.job_id,
                key=new_file.key,
                file_name=new_file.file_name or posixpath.basename(new_file.key),
                expires_at=self._file_expiry(record),
                issued_to=principal.subject,
                details={"reexport_id": record.id},
            )
        except (ReportExpired, ReportFileGone):
            # As the job's own download answers 410: an expired or deleted file is not handed out; re-export again.
            return record
        return record.model_copy(update={"download_url": presigned.url, "download_expires_at": presigned.expires_at})

    def _file_expiry(self, record: Reexport) -> datetime | None:
        """The new file's expiry: the record's own, and, when the pipeline made the file, its job's too (the same
        moment, written in one transaction; a record written before re-exports carried it has only the job's)."""
        job = self._records.jobs.get(record.tenant_id, record.job_id)
        expiries = [record.expires_at, job.job.expires_at if job is not None else None]
        return min((moment for moment in expiries if moment is not None), default=None)

    def list_reexports(
        self,
        principal: Principal,
        *,
        status: ReexportStatus | None,
        report_id: str | None,
        limit: int,
        after: str | None,
    ) -> tuple[list[Reexport], str | None]:
        """Newest first: a page of re-exports after `after`, and the id to continue after when more follow."""
        stored, more = self._records.reexports.query(
            principal.tenant_id, status=status, report_id=report_id, limit=limit, after_reexport_id=after
        )
        return [entry.record for entry in stored], stored[-1].record.id if more and stored else None

    def cancel_reexport(self, principal: Principal, reexport_id: str) -> ReexportCancelOutcome:
        """A re-export's cancel is its job's cancel: a queued job ends with its re-export at once, a running
        one is asked to stop and the generator ends both."""
        stored = self._records.load(principal, reexport_id, consistent=True)
        if stored.record.status.is_active:
            stored = self._repair.if_orphaned(stored)
            if stored.record.status is ReexportStatus.CANCELLED:
                return ReexportCancelOutcome(stored.record, completed=True)  # its job had been cancelled
        record = stored.record
        if not record.status.is_active:
            raise ReexportNotCancellable(
                f"The re-export has already {record.status.value} and can no longer be cancelled"
            )
        try:
            outcome = self._jobs.cancel_job(principal, record.job_id)
        except (JobNotCancellable, NotFound):
            raise ReexportNotCancellable("The re-export has already finished and can no longer be cancelled") from None
        return ReexportCancelOutcome(
            self._records.load(principal, reexport_id, consistent=True).record, outcome.completed
        )

    def _create(
        self,
        principal: Principal,
        original: StoredJob,
        overrides: ReexportOverrides | None,
        reason: str | None,
    ) -> tuple[Reexport, Job]:
        source = original.job
        parameters = self.build_export_params(source, overrides)
        now = now_utc()
        reexport_id, job_id = str(uuid7()), str(uuid7())
        job = Job(
            **parameters.model_dump(exclude={"tenant_id", "idempotency_key"}),
            id=job_id,
            tenant_id=principal.tenant_id,
            requested_by=principal.subject,
            status=JobStatus.QUEUED,
            reexport_id=reexport_id,
            reexport_of=source.id,
            created_at=now,
            updated_at=now,
        )
        record = Reexport(
            id=reexport_id,
            tenant_id=principal.tenant_id,
            report_id=source.id,
            job_id=job_id,
            status=ReexportStatus.PENDING,
            requested_by=principal.subject,
            reason=reason,
            original_parameters=job_parameters(source),
            effective_parameters=parameters.export_parameters(),
            overrides=overrides.given() if overrides else None,
            original_file=file_of(source),
            created_at=now,
            updated_at=now,
            version=1,
        )
        requested = new_event(
            source.id,
            HistoryEventType.REEXPORT_REQUESTED,
            actor=principal.subject,
            at=now,
            details={"reexport_id": reexport_id, "job_id": job_id, "reason": reason, "overrides": record.overrides},
        )
        created = new_event(
            job.id,
            HistoryEventType.CREATED,
            actor=job.requested_by,
            at=job.created_at,
            details={"reexport_id": record.id, "reexport_of": record.report_id},
        )
        self._records.reexports.create(
            record,
            original_manifest=source.manifest,
            requested=requested,
            job_items=self._records.jobs.new_job_items(
                job, params_hash=parameters.parameters_hash(), created=created, most_active=self._jobs.max_active_jobs
            ),
        )
        logger.append_keys(reexport_id=reexport_id)
        logger.info("Re-export requested", extra={"report_id": source.id, "job_id": job_id})
        metrics.add_metric(name="ReexportsRequested", unit="Count", value=1)
        return record, job

    def _wake(self, job: Job) -> None:
        try:
            self._queue.wake_generator(job)
        except Exception:
            # As for a new job: the job stays queued and JobDispatchFailed counts it.
            logger.exception("Could not queue the job for generation", extra={"job_id": job.id})
            metrics.add_metric(name="JobDispatchFailed", unit="Count", value=1)

    def _active(self, principal: Principal, original: StoredJob) -> Reexport | None:
        """The re-export the original names as active; None when that record turned out to be left over by a
        job that had already finished (it is then ended, and the original released, so the caller reads again)."""
        active_id = original.job.active_reexport_id or ""
        active = self._records.reexports.get(principal.tenant_id, active_id, consistent=True)
        if active is None:
            raise ConcurrentUpdate("The report's re-export is being set up; try again")
        if active.record.status.is_active:
            active = self._repair.if_orphaned(active)
        if not active.record.status.is_active:
            # Ended (just now, or earlier without the original released): release it, and the caller reads again.
            self._records.reexports.release_original(principal.tenant_id, original.job.id, active_id)
            return None
        logger.info("Re-export already in progress", extra={"reexport_id": active_id})
        return active.record


def _backoff(attempt: int) -> None:
    """Full jitter: a random wait up to an exponentially growing cap, so colliding requests spread out."""
    time.sleep(random.uniform(0, min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2**attempt)))


@cache
def reexport_requests() -> ReexportRequests:
    settings = get_settings()
    records, ending = build_records()
    return ReexportRequests(
        records,
        Repair(records.jobs, records.reexports, ending),
        GenerateQueue(clients.sqs(), settings.generate_queue_url),
        job_service(),
        download_service(),
    )
