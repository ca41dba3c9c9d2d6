"""The jobs use cases: create (idempotent), list, get, cancel, and the readiness check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from uuid6 import uuid7

from report_export.aws import clients
from report_export.aws.dynamo.store import (
    IdempotencyKeyTaken,
    JobStore,
    StaleWrite,
    StoredJob,
    reexport_update,
    versioned_update,
)
from report_export.aws.sqs import GenerateQueue
from report_export.core import signing
from report_export.core.auth import Principal
from report_export.core.errors import (
    ConcurrentUpdate,
    Forbidden,
    IdempotencyKeyReused,
    JobNotCancellable,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from report_export.core.history import HistoryEventType, HistoryPage, new_event
from report_export.core.models import JOB_ID_PATTERN, JobStatus, JobType, format_timestamp, now_utc
from report_export.core.observability import logger, metrics
from report_export.core.paging import CursorCodec, query_fingerprint
from report_export.core.settings import Settings, get_settings
from report_export.core.signing import Signer
from report_export.jobs.models import CreateJobRequest, Job, JobPage
from report_export.reexports.models import ReexportStatus

_JOB_ID_RE = re.compile(JOB_ID_PATTERN)
# A cancel reads, decides and writes conditionally; the generator may move the job in between.
_CANCEL_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    job: Job
    replayed: bool


@dataclass(frozen=True, slots=True)
class CancelOutcome:
    job: Job
    # False when the job is running: the cancel is recorded and the generator stops at its next checkpoint.
    completed: bool


class JobService:
    def __init__(self, settings: Settings, store: JobStore, queue: GenerateQueue, cursors: CursorCodec) -> None:
        self._settings = settings
        self._store = store
        self._queue = queue
        self._cursors = cursors

    def create_job(self, principal: Principal, request: CreateJobRequest) -> CreateOutcome:
        if request.tenant_id is not None and request.tenant_id != principal.tenant_id:
            raise Forbidden("tenant_id in the body does not match the tenant of your token")
        self.check_period_length(request)

        created_at = now_utc()
        job = Job(
            **request.model_dump(exclude={"tenant_id"}),
            id=str(uuid7()),
            tenant_id=principal.tenant_id,
            requested_by=principal.subject,
            status=JobStatus.QUEUED,
            created_at=created_at,
            updated_at=created_at,
        )
        params_hash = request.parameters_hash()
        try:
            self._store.create_job(job, params_hash=params_hash)
        except IdempotencyKeyTaken as taken:
            return CreateOutcome(self._replay(principal, taken, params_hash), replayed=True)

        logger.append_keys(job_id=job.id)
        logger.info("Job created", extra={"job_type": job.job_type.value})
        metrics.add_metric(name="JobsCreated", unit="Count", value=1)
        try:
            self._queue.wake_generator(job)
        except Exception:
            # The job is written and stays queued: the client keeps its job, and a queued job without a
            # wake-up is what the sweeper (a later issue) re-sends; until then JobDispatchFailed counts it.
            logger.exception("Could not queue the job for generation", extra={"job_id": job.id})
            metrics.add_metric(name="JobDispatchFailed", unit="Count", value=1)
        return CreateOutcome(job, replayed=False)

    def check_period_length(self, request: CreateJobRequest) -> None:
        period_days = request.period_days
        if period_days is not None and period_days > self._settings.max_period_days:
            raise ValidationFailed(f"the period must not exceed {self._settings.max_period_days} days")

    def _replay(self, principal: Principal, taken: IdempotencyKeyTaken, params_hash: str) -> Job:
        if taken.record.params_hash != params_hash:
            raise IdempotencyKeyReused(
                "This idempotency_key was already used with different parameters; use a new key for a new export"
            )
        stored = self._store.get_job(principal.tenant_id, taken.record.job_id, consistent=True)
        if stored is None:
            raise IdempotencyKeyReused("This idempotency_key belongs to a job that no longer exists; use a new key")
        logger.info("Idempotent replay", extra={"job_id": stored.job.id})
        return stored.job

    def get_job(self, principal: Principal, job_id: str) -> Job:
        return self._load(principal, job_id).job

    def get_job_of_tenant(self, tenant_id: str, job_id: str) -> Job:
        """For callers whose tenant comes from a signed link rather than a token."""
        return self._load_for_tenant(tenant_id, job_id).job

    def _load(self, principal: Principal, job_id: str, *, consistent: bool = False) -> StoredJob:
        return self._load_for_tenant(principal.tenant_id, job_id, consistent=consistent)

    def _load_for_tenant(self, tenant_id: str, job_id: str, *, consistent: bool = False) -> StoredJob:
        # Another tenant's job, a malformed id and a missing job all look the same from outside.
        stored = None
        if _JOB_ID_RE.match(job_id):
            stored = self._store.get_job(tenant_id, job_id, consistent=consistent)
        if stored is None:
            raise NotFound("Job not found")
        logger.append_keys(job_id=job_id)
        return stored

    def list_jobs(
        self,
        principal: Principal,
        *,
        status: JobStatus | None,
        job_type: JobType | None,
        limit: int,
        cursor: str | None,
    ) -> JobPage:
        fingerprint = query_fingerprint(
            tenant=principal.tenant_id,
            status=status.value if status else None,
            job_type=job_type.value if job_type else None,
        )
        after = self._cursors.decode(cursor, fingerprint=fingerprint) if cursor else None
        stored, more = self._store.query_jobs(
            principal.tenant_id, status=status, job_type=job_type, limit=limit, after_job_id=after
        )
        next_cursor = None
        if more and stored:
            next_cursor = self._cursors.encode(after=stored[-1].job.id, fingerprint=fingerprint)
        return JobPage(items=[entry.job for entry in stored], next_cursor=next_cursor)

    def cancel_job(self, principal: Principal, job_id: str) -> CancelOutcome:
        for _ in range(_CANCEL_ATTEMPTS):
            stored = self._load(principal, job_id, consistent=True)
            status = stored.job.status
            try:
                if status is JobStatus.QUEUED:
                    updated = self._cancel_queued(principal, stored)
                    logger.info("Job cancelled while queued")
                    return CancelOutcome(updated.job, completed=True)
                if status is JobStatus.RUNNING:
                    if stored.job.cancel_requested:
                        self._note_reexport_cancel_requested(stored.job)
                        return CancelOutcome(stored.job, completed=False)
                    updated = self._store.update_job(
                        stored,
                        expected_status=JobStatus.RUNNING,
                        changes={"cancel_requested": True, "updated_at": format_timestamp(now_utc())},
                    )
                    logger.info("Cancel requested for a running job")
                    self._note_reexport_cancel_requested(updated.job)
                    return CancelOutcome(updated.job, completed=False)
            except StaleWrite:
                continue
            if status is JobStatus.CANCELLED:
                return CancelOutcome(stored.job, completed=True)
            raise JobNotCancellable(f"The job has already {status.value} and can no longer be cancelled")
        raise ConcurrentUpdate("The job changed while it was being cancelled; try again")

    def _note_reexport_cancel_requested(self, job: Job) -> None:
        """A running job that regenerates a report: its re-export says cancel_requested too (whichever of the
        two DELETEs asked); the generator ends both at its next checkpoint."""
        if not job.reexport_id:
            return
        try:
            self._store.update_reexport(
                reexport_update(
                    job.tenant_id,
                    job.reexport_id,
                    {"cancel_requested": True, "updated_at": format_timestamp(now_utc())},
                    condition="#status IN (:pending, :running) AND (attribute_not_exists(#asked) OR #asked = :no)",
                    condition_names={"#status": "status", "#asked": "cancel_requested"},
                    condition_values={
                        ":pending": ReexportStatus.PENDING.value,
                        ":running": ReexportStatus.RUNNING.value,
                        ":no": False,
                    },
                )
            )
        except StaleWrite:
            pass  # it ended meanwhile (its status says how), or it already says so

    def _cancel_queued(self, principal: Principal, stored: StoredJob) -> StoredJob:
        """queued → cancelled; a job that regenerates a report ends its re-export in the same transaction
        (cancelled, the original released), so a cancelled job never leaves a re-export pending."""
        now = format_timestamp(now_utc())
        changes = {"status": JobStatus.CANCELLED, "updated_at": now}
        job = stored.job
        reexport = (
            self._store.get_reexport(job.tenant_id, job.reexport_id, consistent=True) if job.reexport_id else None
        )
        if reexport is None or not reexport.record.status.is_active:
            return self._store.update_job(stored, expected_status=JobStatus.QUEUED, changes=changes)
        record = reexport.record
        self._store.end_reexport_with_job(
            versioned_update(stored, expected_status=JobStatus.QUEUED, changes=changes),
            record,
            {"status": ReexportStatus.CANCELLED, "completed_at": now, "updated_at": now},
            new_event(
                record.report_id,
                HistoryEventType.REEXPORT_CANCELLED,
                actor=principal.subject,
                details={"reexport_id": record.id, "job_id": record.job_id, "while": "pending"},
            ),
        )
        logger.info("Re-export cancelled while pending", extra={"reexport_id": record.id})
        return self._load(principal, job.id, consistent=True)

    def job_history(self, principal: Principal, job_id: str, *, limit: int, cursor: str | None) -> HistoryPage:
        """The report's audit history, oldest first (404 for a job the caller's tenant does not have)."""
        self._load(principal, job_id)
        fingerprint = query_fingerprint(tenant=principal.tenant_id, history_of=job_id)
        after = self._cursors.decode(cursor, fingerprint=fingerprint) if cursor else None
        events, more = self._store.query_history(principal.tenant_id, job_id, limit=limit, after_event_id=after)
        next_cursor = None
        if more and events:
            next_cursor = self._cursors.encode(after=events[-1].id, fingerprint=fingerprint)
        return HistoryPage(items=events, next_cursor=next_cursor)

    def check_ready(self) -> None:
        try:
            self._store.ping()
            signing.load_secret(self._settings.signing_secret_parameter)
        except Exception as error:
            logger.warning("Readiness check failed", extra={"reason": type(error).__name__})
            raise ServiceUnavailable("The service cannot reach its storage right now") from None


@cache
def job_service() -> JobService:
    settings = get_settings()
    return JobService(
        settings,
        JobStore(clients.dynamodb(), settings.table_name),
        GenerateQueue(clients.sqs(), settings.generate_queue_url),
        CursorCodec(Signer(settings.signing_secret_parameter, purpose="list-cursor")),
    )
