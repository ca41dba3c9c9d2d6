"""The jobs use cases: create (idempotent), list, get, cancel, and the readiness check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from uuid6 import uuid7

from report_export.aws import clients, secrets
from report_export.aws.dynamo.codecs import StoredJob
from report_export.aws.dynamo.history import HistoryRepository
from report_export.aws.dynamo.jobs import CreateKeptFailing, IdempotencyKeyTaken, JobRepository, TenantAtCapacity
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.updates import versioned_update
from report_export.aws.sqs import GenerateQueue
from report_export.core.auth import Principal
from report_export.core.errors import (
    ConcurrentUpdate,
    Forbidden,
    IdempotencyKeyReused,
    JobNotCancellable,
    NotFound,
    ServiceUnavailable,
    TooManyActiveJobs,
    ValidationFailed,
)
from report_export.core.history import ChainCheck, HistoryEvent, HistoryEventType, new_event
from report_export.core.models.common import JOB_ID_PATTERN, JobStatus, JobType, format_timestamp, now_utc
from report_export.core.models.jobs import CreateJobRequest, Job
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings, get_settings
from report_export.jobs.ending import Cancelled, Guard, JobEnding, job_ending
from report_export.jobs.history_chain import HistoryChain

_JOB_ID_RE = re.compile(JOB_ID_PATTERN)
# A cancel reads, decides and writes conditionally; the generator may move the job in between.
_CANCEL_ATTEMPTS = 3
_PENDING = {"while": "pending"}


class SizeCheck(Protocol):
    def refuse_too_large(self, job: Job) -> None:
        """Raises ReportTooLarge when the job's report would pass the service's limits."""
        ...


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
    def __init__(
        self,
        settings: Settings,
        jobs: JobRepository,
        history: HistoryRepository,
        ending: JobEnding,
        queue: GenerateQueue,
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._history = history
        self._ending = ending
        self._queue = queue

    def create_job(
        self,
        principal: Principal,
        request: CreateJobRequest,
        *,
        schedule_id: str | None = None,
        size_check: SizeCheck | None = None,
    ) -> CreateOutcome:
        """The job, queued; or its replay when the idempotency key was used before. `size_check` may refuse
        it first (the API's creates: a scheduled firing is not refused, its job fails REPORT_TOO_LARGE when
        its first page shows the size, which the operators' failure notices report)."""
        if request.tenant_id is not None and request.tenant_id != principal.tenant_id:
            raise Forbidden("tenant_id in the body does not match the tenant of your token")
        self.check_period_length(request)
        params_hash = request.parameters_hash()
        if request.idempotency_key is not None:
            # A retry of a create that was made gets its job, whatever the tenant has running meanwhile.
            record = self._jobs.idempotency_record(principal.tenant_id, request.idempotency_key)
            if record is not None:
                return CreateOutcome(self._replay(principal, IdempotencyKeyTaken(record), params_hash), replayed=True)

        # No read of the tenant's active jobs first: the job's transaction holds the limit, and a refused one
        # writes nothing (JobRepository.create then tells a full tenant from a collision).
        created_at = now_utc()
        job = Job(
            **request.model_dump(exclude={"tenant_id"}),
            id=str(uuid7()),
            tenant_id=principal.tenant_id,
            requested_by=principal.subject,
            status=JobStatus.QUEUED,
            schedule_id=schedule_id,
            created_at=created_at,
            updated_at=created_at,
        )
        if size_check is not None:
            size_check.refuse_too_large(job)
        created = new_event(job.id, HistoryEventType.CREATED, actor=job.requested_by, at=job.created_at)
        try:
            self._jobs.create(job, params_hash=params_hash, created=created, most_active=self.max_active_jobs)
        except TenantAtCapacity:
            raise self._too_many_active() from None
        except IdempotencyKeyTaken as taken:
            return CreateOutcome(self._replay(principal, taken, params_hash), replayed=True)
        except CreateKeptFailing:
            raise ServiceUnavailable(
                "The job could not be written right now and nothing was stored; send the same request again "
                "(with its idempotency_key, if it has one)"
            ) from None

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

    def check_active_capacity(self, tenant_id: str) -> None:
        """TooManyActiveJobs when the tenant already has its most jobs queued or running (a re-export asks
        before its larger transaction; the job's own transaction is what holds the limit exactly)."""
        if not self._jobs.active.has_room(tenant_id, most=self.max_active_jobs):
            raise self._too_many_active()

    def _too_many_active(self) -> TooManyActiveJobs:
        metrics.add_metric(name="JobsRefusedTooManyActive", unit="Count", value=1)
        return TooManyActiveJobs(
            f"This tenant already has {self.max_active_jobs} jobs queued or running, the most it may have at "
            "once; try again when some have finished",
            retry_after_seconds=self._settings.active_jobs_retry_after_seconds,
        )

    @property
    def max_period_days(self) -> int:
        return self._settings.max_period_days

    @property
    def max_active_jobs(self) -> int:
        return self._settings.max_active_jobs_per_tenant

    def check_period_length(self, request: CreateJobRequest) -> None:
        period_days = request.period_days
        if period_days is not None and period_days > self._settings.max_period_days:
            raise ValidationFailed(f"the period must not exceed {self._settings.max_period_days} days")

    def _replay(self, principal: Principal, taken: IdempotencyKeyTaken, params_hash: str) -> Job:
        if taken.record.params_hash != params_hash:
            raise IdempotencyKeyReused(
                "This idempotency_key was already used with different parameters; use a new key for a new export"
            )
        stored = self._jobs.get(principal.tenant_id, taken.record.job_id, consistent=True)
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
            stored = self._jobs.get(tenant_id, job_id, consistent=consistent)
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
        after: str | None,
        expired: bool | None = None,
    ) -> tuple[list[Job], str | None]:
        """Newest first: a page of jobs after the job `after`, and the id to continue after when more follow.
        `expired` keeps only the jobs whose file's time is over (true) or is not (false)."""
        stored, more = self._jobs.query(
            principal.tenant_id,
            status=status,
            job_type=job_type,
            limit=limit,
            after_job_id=after,
            expired=expired,
            now=format_timestamp(now_utc()),
        )
        return [entry.job for entry in stored], stored[-1].job.id if more and stored else None

    def cancel_job(self, principal: Principal, job_id: str) -> CancelOutcome:
        for _ in range(_CANCEL_ATTEMPTS):
            stored = self._load(principal, job_id, consistent=True)
            status = stored.job.status
            if status is JobStatus.QUEUED:
                # A job that regenerates a report ends its re-export in the same transaction.
                if self._ending.end(stored, Cancelled(by=principal.subject), guard=Guard.VERSION, context=_PENDING):
                    logger.info("Job cancelled while queued")
                    return CancelOutcome(self._load(principal, job_id, consistent=True).job, completed=True)
                continue
            if status is JobStatus.RUNNING:
                try:
                    asked = stored if stored.job.cancel_requested else self._ask_to_stop(stored)
                except StaleWrite:
                    continue
                self._ending.cancel_requested(asked.job)
                return CancelOutcome(asked.job, completed=False)
            if status is JobStatus.CANCELLED:
                return CancelOutcome(stored.job, completed=True)
            raise JobNotCancellable(f"The job has already {status.value} and can no longer be cancelled")
        raise ConcurrentUpdate("The job changed while it was being cancelled; try again")

    def _ask_to_stop(self, stored: StoredJob) -> StoredJob:
        updated = self._jobs.apply(
            versioned_update(
                stored,
                expected_status=JobStatus.RUNNING,
                changes={"cancel_requested": True, "updated_at": format_timestamp(now_utc())},
            )
        )
        logger.info("Cancel requested for a running job")
        return updated

    def job_history(
        self, principal: Principal, job_id: str, *, limit: int, after: str | None
    ) -> tuple[list[HistoryEvent], str | None, ChainCheck]:
        """The report's audit history, oldest first (404 for a job the caller's tenant does not have), and
        whether its chain holds, every entry written so far linked into it first."""
        self._load(principal, job_id)
        check = HistoryChain(self._history).seal_and_check(principal.tenant_id, job_id)
        if not check.intact:
            logger.warning("History chain broken", extra={"audit": "history_chain_broken", "job_id": job_id})
            metrics.add_metric(name="HistoryChainsBroken", unit="Count", value=1)
        events, more = self._history.query(principal.tenant_id, job_id, limit=limit, after_event_id=after)
        return events, events[-1].id if more and events else None, check

    def check_ready(self) -> None:
        try:
            self._jobs.ping()
            secrets.secure_parameter(self._settings.signing_secret_parameter)
        except Exception as error:
            logger.warning("Readiness check failed", extra={"reason": type(error).__name__})
            raise ServiceUnavailable("The service cannot reach its storage right now") from None


@cache
def job_service() -> JobService:
    settings = get_settings()
    table = Table(clients.dynamodb(), settings.table_name)
    return JobService(
        settings,
        JobRepository(table),
        HistoryRepository(table),
        job_ending(settings, table),
        GenerateQueue(clients.sqs(), settings.generate_queue_url),
    )
