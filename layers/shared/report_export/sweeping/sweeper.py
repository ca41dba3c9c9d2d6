"""The sweeper: on a schedule, it finishes what nothing else will.

- A running job whose lease ran out (its worker died or hit its timeout) is requeued for a new
  attempt, or, after the last allowed attempt, failed LEASE_EXPIRED and announced. A job whose file
  an invocation left at a checkpoint (a report too large for one invocation) is not requeued: it
  keeps its checkpoint, and gets its wake-up again so that the next invocation goes on from there;
  its attempts are counted from the last checkpoint.
- A queued job that nobody claimed for a while (its wake-up was lost) gets its wake-up again;
  the claim is conditional, so a wake-up sent twice is harmless.
- A wake-up that reached the dead-letter queue ends its job failed DEAD_LETTERED, announced,
  and leaves the queue.
- A job that ended (succeeded or failed) but whose announcement never went out (SNS or EventBridge
  down for longer than the state machine retries, or the machine itself down) is announced again,
  a few times at most.
- A tenant schedule's change left half-applied (its record written, EventBridge Scheduler not yet)
  is completed from the record.

Work is found in the sparse index of unfinished work (never a Scan), in bounded pages, and every
change is conditional on what was read: two sweepers at once do each thing once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from report_export.aws import clients
from report_export.aws.dynamo.codecs import StoredJob
from report_export.aws.dynamo.history import HistoryRepository
from report_export.aws.dynamo.jobs import JobRepository
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.updates import expired_lease_update, versioned_update
from report_export.aws.sqs import DeadLetter, DeadLetterQueue, GenerateQueue
from report_export.core.models.common import JobStatus, format_timestamp, now_utc
from report_export.core.models.jobs import CONTINUING
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings, get_settings
from report_export.generation.continuation import checkpoint_attempt
from report_export.generation.handover import HandOver, build_hand_over
from report_export.generation.uploads import discard_unfinished_file
from report_export.jobs.ending import Failed, Guard, JobEnding, job_ending
from report_export.jobs.history_chain import HistoryChain
from report_export.schedules.sync import ScheduleSync, schedule_sync

LEASE_EXPIRED = Failed("LEASE_EXPIRED", "The report's generation stopped answering and ran out of attempts")
DEAD_LETTERED = Failed("DEAD_LETTERED", "The report could not be generated: every delivery of its job failed")
_HANDED_OVER_BY = "swept"
# While the sweeper works on a dead letter, other sweepers do not see it.
_DEAD_LETTER_VISIBILITY_SECONDS = 120


@dataclass
class SweepReport:
    requeued: int = 0
    continued: int = 0
    failed: int = 0
    woken: int = 0
    dead_letters: int = 0
    announced: int = 0
    schedules_repaired: int = 0
    histories_sealed: int = 0
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
        schedules: ScheduleSync,
        s3: Any,
        history_chain: HistoryChain,
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._ending = ending
        self._hand_over = hand_over
        self._queue = queue
        self._dead_letters = dead_letters
        self._schedules = schedules
        self._s3 = s3
        self._history_chain = history_chain

    def sweep(self) -> SweepReport:
        report = SweepReport()
        now = now_utc()
        # Each sweep hands failures over under a name of its own: an execution of an earlier sweep that could
        # not store its outcome must not stop this one (a duplicate start would be skipped as already done).
        mark = f"{_HANDED_OVER_BY}-{now:%Y%m%d%H%M%S}"
        self._each(
            report, JobStatus.RUNNING, format_timestamp(now), lambda job: self._expired_lease(job, now, mark, report)
        )
        queued_due = format_timestamp(now - timedelta(seconds=self._settings.sweep_queued_after_seconds))
        self._each(report, JobStatus.QUEUED, queued_due, lambda job: self._lost_wake_up(job, now, report))
        self._drain_dead_letters(now, mark, report)
        self._announce_again(now, report)
        self._repair_schedules(report)
        self._seal_histories(report)
        for name in (
            "requeued",
            "continued",
            "failed",
            "woken",
            "dead_letters",
            "announced",
            "schedules_repaired",
            "histories_sealed",
        ):
            metrics.add_metric(name=f"Swept{name.title().replace('_', '')}", unit="Count", value=getattr(report, name))
        logger.info("Sweep done", extra={"report": report.__dict__})
        return report

    def _each(self, report: SweepReport, status: JobStatus, due_before: str, act: Callable[[StoredJob], None]) -> None:
        """Acts on each due job, read again first; one job that fails is reported and the sweep goes on."""
        for tenant_id, job_id in self._jobs.unfinished(status, due_before=due_before, limit=self._page):
            try:
                current = self._jobs.get(tenant_id, job_id, consistent=True)
                if current is not None and current.job.status is status:
                    act(current)
            except Exception:
                logger.exception("Sweeping a job failed; it is looked at again next time", extra={"job_id": job_id})
                report.skipped.append(job_id)

    def _expired_lease(self, current: StoredJob, now: datetime, mark: str, report: SweepReport) -> None:
        if not _lease_ran_out(current, now):
            return  # its worker extended the lease since the index was read
        if current.checkpoint is not None:
            self._continue(current, now, mark, report)
            return
        if current.attempt >= self._settings.max_attempts:
            if self._fail(current, LEASE_EXPIRED, Guard.ATTEMPT, mark):
                report.failed += 1
            return
        moment = format_timestamp(now)
        try:
            self._jobs.apply(
                expired_lease_update(
                    current,
                    {"status": JobStatus.QUEUED, "phase": None, "progress_pct": 0, "updated_at": moment},
                    now=moment,
                    remove=("lease_expires_at",),
                )
            )
        except StaleWrite:
            return  # its worker came back, or another sweeper got there first
        self._wake(current, report)
        report.requeued += 1

    def _continue(self, current: StoredJob, now: datetime, mark: str, report: SweepReport) -> None:
        """A job between two invocations whose next one has not come (its wake-up lost, or its worker died
        after the checkpoint): woken again, unless the attempts since the checkpoint are used up."""
        since = checkpoint_attempt(current.checkpoint) or 0
        if current.attempt - since >= self._settings.max_attempts:
            if self._fail(current, LEASE_EXPIRED, Guard.ATTEMPT, mark):
                report.failed += 1
            return
        moment = format_timestamp(now)
        grace = format_timestamp(now + timedelta(seconds=self._settings.sweep_queued_after_seconds))
        try:
            self._jobs.apply(
                expired_lease_update(
                    current, {"phase": CONTINUING, "lease_expires_at": grace, "updated_at": moment}, now=moment
                )
            )
        except StaleWrite:
            return
        self._wake(current, report)
        report.continued += 1

    def _lost_wake_up(self, current: StoredJob, now: datetime, report: SweepReport) -> None:
        waited = now - current.job.updated_at
        if waited < timedelta(seconds=self._settings.sweep_queued_after_seconds):
            return  # claimed and released, or woken by another sweeper, since the index was read
        if current.attempt and waited < timedelta(seconds=self._settings.sweep_released_after_seconds):
            # Released by a failed attempt: its message is on its way back after the queue's visibility timeout,
            # and sending another would skip the queue's backoff and its count of deliveries.
            return
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
            return
        self._wake(current, report)
        report.woken += 1

    def _drain_dead_letters(self, now: datetime, mark: str, report: SweepReport) -> None:
        for _ in range(self._page // 10 or 1):
            letters = self._dead_letters.receive(visibility_timeout=_DEAD_LETTER_VISIBILITY_SECONDS)
            if not letters:
                return
            for letter in letters:
                try:
                    self._dead_letter(letter, now, mark, report)
                except Exception:
                    logger.exception("A dead letter could not be handled; it is looked at again next time")
                    report.skipped.append(letter.receipt_handle[:16])

    def _dead_letter(self, letter: DeadLetter, now: datetime, mark: str, report: SweepReport) -> None:
        wake_up = letter.message
        if wake_up is None:
            logger.warning("A dead letter that is not a wake-up was removed", extra={"body": letter.body[:200]})
        current = self._jobs.get(wake_up.tenant_id, wake_up.job_id, consistent=True) if wake_up else None
        if current is not None and current.job.status is JobStatus.QUEUED:
            if not self._fail(current, DEAD_LETTERED, Guard.VERSION, mark):
                return  # the job moved: the letter is looked at again on the next sweep
            report.failed += 1
        elif current is not None and current.job.status is JobStatus.RUNNING and _lease_ran_out(current, now):
            if not self._fail(current, DEAD_LETTERED, Guard.ATTEMPT, mark):
                return
            report.failed += 1
        # A running job with a live lease is another delivery's: its worker, or the lease path, ends it.
        self._dead_letters.remove(letter)
        report.dead_letters += 1

    def _fail(self, current: StoredJob, failure: Failed, guard: Guard, mark: str) -> bool:
        """Through the state machine, so that the failure is announced; ended directly if it is down. The job
        fails for good: an upload its last worker left open (killed mid-file) is aborted."""
        try:
            self._hand_over.failed(current, failure, guard=guard, handed_over_by=mark)
        except Exception:
            logger.exception(
                "The failure could not be handed over; ending the job directly", extra={"job_id": current.job.id}
            )
            if self._ending.end(current, failure, guard=guard) is None:
                return False
        discard_unfinished_file(self._s3, bucket=self._settings.reports_bucket, job=current.job)
        return True

    def _announce_again(self, now: datetime, report: SweepReport) -> None:
        due = format_timestamp(now - timedelta(seconds=self._settings.sweep_unannounced_after_seconds))
        for tenant_id, job_id in self._jobs.unannounced(due_before=due, limit=self._page):
            try:
                self._announce(tenant_id, job_id, due, format_timestamp(now), report)
            except Exception:
                logger.exception("Announcing a job again failed; it is looked at again next time")
                report.skipped.append(job_id)

    def _announce(self, tenant_id: str, job_id: str, due: str, now: str, report: SweepReport) -> None:
        current = self._jobs.get(tenant_id, job_id, consistent=True)
        if current is None:
            return
        job = current.job
        if job.notification_sent_at is not None or job.status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
            self._jobs.forget_announcement(tenant_id, job_id)  # announced meanwhile: only the index lagged
            return
        tried = self._jobs.take_announcement(tenant_id, job_id, due_before=due, now=now)
        if tried is None:
            return  # announced, or taken by another sweeper, since the index was read
        if tried > self._settings.announce_attempts:
            logger.error("The job's announcement could not be sent; giving up", extra={"job_id": job_id})
            metrics.add_metric(name="AnnouncementsAbandoned", unit="Count", value=1)
            self._jobs.forget_announcement(tenant_id, job_id)
            return
        self._hand_over.announce_again(current, round_number=tried)
        report.announced += 1

    def _wake(self, current: StoredJob, report: SweepReport) -> None:
        try:
            self._queue.wake_generator(current.job)
        except Exception:
            # Still queued and now due again later: the next sweep tries once more.
            logger.exception("Could not send the wake-up", extra={"job_id": current.job.id})
            report.skipped.append(current.job.id)

    def _repair_schedules(self, report: SweepReport) -> None:
        for tenant_id, schedule_id in self._schedules.stale(limit=self._page):
            try:
                if self._schedules.repair(tenant_id, schedule_id):
                    report.schedules_repaired += 1
            except Exception:
                logger.exception("Repairing a schedule failed; it is looked at again next time")
                report.skipped.append(schedule_id)

    def _seal_histories(self, report: SweepReport) -> None:
        """Link the entries written since into their reports' chains, so that none stays open to an edit long."""
        for tenant_id, job_id in self._history_chain.unsealed(limit=self._page):
            try:
                self._history_chain.seal(tenant_id, job_id)
                report.histories_sealed += 1
            except Exception:
                logger.exception("Sealing a history failed; it is looked at again next time", extra={"job_id": job_id})
                report.skipped.append(job_id)

    @property
    def _page(self) -> int:
        return self._settings.sweep_page_size


def _lease_ran_out(current: StoredJob, now: datetime) -> bool:
    return current.lease_expires_at is not None and current.lease_expires_at < format_timestamp(now)


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
        schedule_sync(settings, table),
        clients.s3(),
        HistoryChain(HistoryRepository(table)),
    )
