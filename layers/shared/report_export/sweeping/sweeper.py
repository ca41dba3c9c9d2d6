"""The sweeper: on a schedule, it finishes what nothing else will.

- A running job whose lease ran out (its worker died or hit its timeout) is requeued for a new
  attempt, or, after the last allowed attempt, failed LEASE_EXPIRED and announced.
- A queued job that nobody claimed for a while (its wake-up was lost) gets its wake-up again;
  the claim is conditional, so a wake-up sent twice is harmless.
- A wake-up that reached the dead-letter queue ends its job failed DEAD_LETTERED, announced,
  and leaves the queue.

Work is found in the sparse index of unfinished jobs (never a Scan), in bounded pages, and every
change is conditional on what was read: two sweepers at once do each thing once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache

from report_export.aws import clients
from report_export.aws.dynamo.codecs import StoredJob
from report_export.aws.dynamo.jobs import JobRepository
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.updates import expired_lease_update, versioned_update
from report_export.aws.sqs import DeadLetterQueue, GenerateQueue
from report_export.core.models.common import JobStatus, format_timestamp, now_utc
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings, get_settings
from report_export.generation.handover import HandOver, build_hand_over
from report_export.jobs.ending import Failed, Guard, JobEnding, job_ending

LEASE_EXPIRED = Failed("LEASE_EXPIRED", "The report's generation stopped answering and ran out of attempts")
DEAD_LETTERED = Failed("DEAD_LETTERED", "The report could not be generated: every delivery of its job failed")
_HANDED_OVER_BY = "swept"
# While the sweeper works on a dead letter, other sweepers do not see it.
_DEAD_LETTER_VISIBILITY_SECONDS = 120


@dataclass
class SweepReport:
    requeued: int = 0
    failed: int = 0
    woken: int = 0
    dead_letters: int = 0
    skipped: list[str] = field(default_factory=list)


class Sweeper:
    def __init__(
        self,
        settings: Settings,
        jobs: JobRepository,
        ending: JobEnding,
        hand_over: HandOver,
        queue: GenerateQueue,
        dead_letters: DeadLetterQueue,
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._ending = ending
        self._hand_over = hand_over
        self._queue = queue
        self._dead_letters = dead_letters

    def sweep(self) -> SweepReport:
        report = SweepReport()
        self._expired_leases(report)
        self._lost_wake_ups(report)
        self._drain_dead_letters(report)
        for name in ("requeued", "failed", "woken", "dead_letters"):
            metrics.add_metric(name=f"Swept{name.title().replace('_', '')}", unit="Count", value=getattr(report, name))
        logger.info("Sweep done", extra={"report": report.__dict__})
        return report

    def _expired_leases(self, report: SweepReport) -> None:
        now = format_timestamp(now_utc())
        for tenant_id, job_id in self._jobs.unfinished(JobStatus.RUNNING, due_before=now, limit=self._page):
            current = self._jobs.get(tenant_id, job_id, consistent=True)
            if current is None or current.job.status is not JobStatus.RUNNING:
                continue
            if current.lease_expires_at is None or current.lease_expires_at >= now:
                continue  # its worker extended the lease since the index was read
            if current.attempt >= self._settings.max_attempts:
                if self._fail(current, LEASE_EXPIRED, Guard.ATTEMPT):
                    report.failed += 1
                continue
            try:
                self._jobs.apply(
                    expired_lease_update(
                        current,
                        {"status": JobStatus.QUEUED, "phase": None, "progress_pct": 0, "updated_at": now},
                        now=now,
                        remove=("lease_expires_at",),
                    )
                )
            except StaleWrite:
                continue  # its worker came back, or another sweeper got there first
            self._wake(current, report)
            report.requeued += 1

    def _lost_wake_ups(self, report: SweepReport) -> None:
        now = now_utc()
        due = format_timestamp(now - timedelta(seconds=self._settings.sweep_queued_after_seconds))
        for tenant_id, job_id in self._jobs.unfinished(JobStatus.QUEUED, due_before=due, limit=self._page):
            current = self._jobs.get(tenant_id, job_id, consistent=True)
            if current is None or current.job.status is not JobStatus.QUEUED:
                continue
            if format_timestamp(current.job.updated_at) >= due:
                continue  # claimed and released, or woken by another sweeper, since the index was read
            try:
                # Marks the job as woken now, so that the next sweep does not send it again at once.
                self._jobs.apply(
                    versioned_update(
                        current,
                        expected_status=JobStatus.QUEUED,
                        changes={"status": JobStatus.QUEUED, "updated_at": format_timestamp(now)},
                    )
                )
            except StaleWrite:
                continue
            self._wake(current, report)
            report.woken += 1

    def _drain_dead_letters(self, report: SweepReport) -> None:
        for _ in range(self._page // 10 or 1):
            letters = self._dead_letters.receive(visibility_timeout=_DEAD_LETTER_VISIBILITY_SECONDS)
            if not letters:
                return
            for letter in letters:
                wake_up = letter.message
                current = self._jobs.get(wake_up.tenant_id, wake_up.job_id, consistent=True) if wake_up else None
                if current is not None and current.job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
                    guard = Guard.ATTEMPT if current.job.status is JobStatus.RUNNING else Guard.VERSION
                    if not self._fail(current, DEAD_LETTERED, guard):
                        continue  # the job moved: the letter is looked at again on the next sweep
                    report.failed += 1
                self._dead_letters.remove(letter)
                report.dead_letters += 1

    def _fail(self, current: StoredJob, failure: Failed, guard: Guard) -> bool:
        """Through the state machine, so that the failure is announced; ended directly if it is down."""
        logger.append_keys(tenant_id=current.job.tenant_id, job_id=current.job.id)
        try:
            self._hand_over.failed(current, failure, guard=guard, handed_over_by=_HANDED_OVER_BY)
        except Exception:
            logger.exception("The failure could not be handed over; ending the job directly")
            return self._ending.end(current, failure, guard=guard) is not None
        return True

    def _wake(self, current: StoredJob, report: SweepReport) -> None:
        try:
            self._queue.wake_generator(current.job)
        except Exception:
            # Still queued and now due again later: the next sweep tries once more.
            logger.exception("Could not send the wake-up", extra={"job_id": current.job.id})
            report.skipped.append(current.job.id)

    @property
    def _page(self) -> int:
        return self._settings.sweep_page_size


@cache
def sweeper() -> Sweeper:
    settings = get_settings()
    table = Table(clients.dynamodb(), settings.table_name)
    ending = job_ending(settings, table)
    hand_over = build_hand_over(settings, ending)
    return Sweeper(
        settings,
        JobRepository(table),
        ending,
        hand_over,
        GenerateQueue(clients.sqs(), settings.generate_queue_url),
        DeadLetterQueue(clients.sqs(), settings.dead_letter_queue_url),
    )
