"""One way to end a job: every terminal transition — succeeded, failed, cancelled — from any caller
(the generator and its state machine, the cancel route, an internal service's result, the repair of
a record left active, the sweeper) is planned here.

An outcome becomes one set of DynamoDB transaction items: the job's conditional update and, when the
job regenerates a report, the re-export record's ending, the original's release and the history
event. The items are applied here (a cancel, a fallback, a repair) or handed to the state machine
as its store step. So a re-export ends only in the transaction that ends its job, and a reader
never sees a re-export in a state its job has left.

The two other moments of a job that concern its re-export live here too, so that no caller has
to know about re-exports: a claimed job marks its record running, and a running job asked to stop
marks its record cancel_requested.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol

from report_export.aws.dynamo.codecs import StoredJob, StoredReexport, stored_job
from report_export.aws.dynamo.keys import job_key
from report_export.aws.dynamo.reexports import ReexportRepository
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.updates import (
    active_job_leave,
    attempt_update,
    end_reexport_update,
    history_put,
    job_status_check,
    release_original_update,
    running_update,
    versioned_update,
)
from report_export.core.history import HistoryEvent, HistoryEventType, new_event
from report_export.core.models.common import FileReference, JobStatus, format_timestamp, now_utc
from report_export.core.models.jobs import Job
from report_export.core.models.reexports import ChangedInputs, ComparisonSummary, Reexport, ReexportStatus
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings
from report_export.jobs.outcomes import (
    Cancelled,
    Failed,
    Outcome,
    Succeeded,
    Superseded,
    job_changes,
)

__all__ = [
    "Cancelled",
    "Ending",
    "Failed",
    "Guard",
    "JobEnding",
    "Outcome",
    "Succeeded",
    "Superseded",
    "job_ending",
]

# A refused transaction that ends a job is planned again and retried a few times: a conflicting write to
# its re-export's record (a DELETE noting cancel_requested) or to the tenant's active jobs (another job
# created or ending) is no reason to leave it active.
_END_ATTEMPTS = 4
_END_BACKOFF_SECONDS = 0.05
_LATE = "the re-export was completed late; rows were not compared"
_BY_INTERNAL_SERVICE = "the file was stored by an internal service; rows were not compared"


class Guard(Enum):
    """What must still hold of the job for the ending to apply."""

    ATTEMPT = "attempt"  # running under the attempt that read it (the generator, its state machine)
    VERSION = "version"  # the version and status read (a queued job cancelled)
    RUNNING = "running"  # running, whichever attempt (an internal service supersedes it)
    ENDED = "ended"  # already ended in the status read: only its re-export ends (repair)


@dataclass(frozen=True, slots=True)
class Ending:
    # The job's own items (its update and its place among the tenant's active jobs), then its re-export's.
    job_items: list[dict[str, Any]]
    record_items: list[dict[str, Any]] = field(default_factory=list)
    # The re-export as this ending leaves it; None when the job regenerates no report (or its record ended).
    record: Reexport | None = None

    @property
    def items(self) -> list[dict[str, Any]]:
        return [*self.job_items, *self.record_items]


class RowComparer(Protocol):
    def compare(self, record: Reexport, job: Job, new_file: FileReference) -> ComparisonSummary: ...


class JobEnding:
    def __init__(
        self,
        table: Table,
        reexports: ReexportRepository,
        *,
        record_retention_days: int,
        comparer: RowComparer | None = None,
    ) -> None:
        self._table = table
        self._reexports = reexports
        self._record_retention = timedelta(days=record_retention_days)
        # Only the generator compares rows (it holds the new file); other callers say why rows were not compared.
        self._comparer = comparer

    def plan(
        self,
        current: StoredJob,
        outcome: Outcome,
        *,
        guard: Guard,
        reexport: StoredReexport | None = None,
        at_version: bool = False,
        actor: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> Ending:
        """The items that end the job as `outcome` says, under `guard`. `reexport` is the job's record when
        the caller has read it (else it is read here); `at_version` holds the record to that version."""
        now = format_timestamp(now_utc())
        job = current.job
        # Leaving the active set is unconditional: the job's own update is what decides whether it ends.
        job_items = [
            self._job_item(current, outcome, guard, now),
            active_job_leave(self._table.name, job.tenant_id, job.id),
        ]
        if reexport is None:
            reexport = self._active_reexport(current.job)
        if reexport is None or not reexport.record.status.is_active:
            return Ending(job_items)
        record = reexport.record
        changes = self._record_changes(reexport, current.job, outcome, guard, now)
        final = Reexport.model_validate({**record.model_dump(), **changes})
        event = _ended_event(final, actor or _actor_of(outcome, record), context or {})
        update = end_reexport_update(
            record.tenant_id, record.id, changes, expected_version=reexport.version if at_version else None
        )
        record_items = [
            update.as_transact_item(self._table.name),
            release_original_update(record.tenant_id, record.report_id, record.id).as_transact_item(self._table.name),
            history_put(self._table.name, record.tenant_id, event),
        ]
        return Ending(job_items, record_items, final)

    def apply(self, ending: Ending) -> None:
        """All of the ending or none of it (StaleWrite when any of its conditions failed)."""
        self._table.transact(ending.items)

    def end(
        self,
        current: StoredJob,
        outcome: Outcome,
        *,
        guard: Guard,
        actor: str | None = None,
        context: dict[str, Any] | None = None,
    ) -> Ending | None:
        """Plan and apply; None when the job no longer allows it (another writer ended or took it).

        A refusal while the job is still as read came from elsewhere (a conflicting write to its re-export's
        record, or another transaction on the tenant's active jobs): the ending is planned again. Should
        that keep failing, the job still ends, alone: a job left running would never be claimed again, and
        the record left active is repaired on its next request."""
        for attempt in range(_END_ATTEMPTS):
            ending = self.plan(current, outcome, guard=guard, actor=actor, context=context)
            try:
                self.apply(ending)
            except StaleWrite:
                if not self._still_as_read(current, guard):
                    return None
                time.sleep(random.uniform(0, _END_BACKOFF_SECONDS * 2**attempt))
                continue
            if ending.record is not None:
                logger.info("Re-export ended with its job", extra={"reexport_id": ending.record.id})
            return ending
        logger.warning("The job and its re-export could not be ended together", extra={"job_id": current.job.id})
        alone = Ending(ending.job_items)
        try:
            self.apply(alone)
        except StaleWrite:
            return None
        metrics.add_metric(name="JobsEndedWithoutTheirReexport", unit="Count", value=1)
        return alone

    def started(self, claimed: StoredJob) -> None:
        """A claimed job that regenerates a report: its re-export goes pending → running. Informational:
        a failure here stops nothing."""
        job = claimed.job
        if not job.reexport_id:
            return
        try:
            self._reexports.mark_running(job.tenant_id, job.reexport_id, now=format_timestamp(now_utc()))
        except Exception:
            logger.warning("Could not mark the re-export running", exc_info=True)

    def cancel_requested(self, job: Job) -> None:
        """A running job asked to stop: its re-export says cancel_requested too; the generator ends both."""
        if job.reexport_id:
            self._reexports.note_cancel_requested(job.tenant_id, job.reexport_id, now=format_timestamp(now_utc()))

    def _job_item(self, current: StoredJob, outcome: Outcome, guard: Guard, now: str) -> dict[str, Any]:
        if guard is Guard.ENDED:
            return job_status_check(self._table.name, current)
        # The record's retention starts when the job ends: DynamoDB's TTL removes the item then.
        changes = {**job_changes(outcome, now), "ttl": int((now_utc() + self._record_retention).timestamp())}
        remove = ("lease_expires_at", "checkpoint")
        if guard is Guard.ATTEMPT:
            update = attempt_update(current, changes, remove=remove)
        elif guard is Guard.RUNNING:
            update = running_update(current, changes, remove=remove)
        else:
            update = versioned_update(current, expected_status=current.job.status, changes=changes, remove=remove)
        return update.as_transact_item(self._table.name)

    def _still_as_read(self, current: StoredJob, guard: Guard) -> bool:
        """Whether the job still satisfies the guard it was read under (so a refusal came from elsewhere)."""
        now = self._jobs_item(current)
        if now is None:
            return False
        if guard is Guard.ATTEMPT:
            return now.job.status is JobStatus.RUNNING and now.attempt == current.attempt
        if guard is Guard.RUNNING:
            return now.job.status is JobStatus.RUNNING
        if guard is Guard.VERSION:
            return now.version == current.version and now.job.status is current.job.status
        return now.job.status is current.job.status

    def _jobs_item(self, current: StoredJob) -> StoredJob | None:
        item = self._table.get(job_key(current.job.tenant_id, current.job.id), consistent=True)
        return stored_job(item) if item else None

    def reexport_of(self, job: Job) -> Reexport | None:
        """The record of the re-export a job regenerates, whatever its status (None for an ordinary job)."""
        stored = self._active_reexport(job)
        return stored.record if stored else None

    def _active_reexport(self, job: Job) -> StoredReexport | None:
        if not job.reexport_id:
            return None
        return self._reexports.get(job.tenant_id, job.reexport_id, consistent=True)

    def _record_changes(
        self, reexport: StoredReexport, job: Job, outcome: Outcome, guard: Guard, now: str
    ) -> dict[str, Any]:
        record = reexport.record
        if isinstance(outcome, Failed):
            return {
                "status": ReexportStatus.FAILED,
                "error_code": outcome.code,
                "error_message": outcome.message,
                "completed_at": now,
                "updated_at": now,
            }
        if isinstance(outcome, Cancelled):
            return {"status": ReexportStatus.CANCELLED, "completed_at": now, "updated_at": now}
        changes = success_changes(record, outcome.file, now, expires_at=outcome.expires_at)
        matches = changes["matches_original"]
        if not matches:
            changes["comparison"] = self._comparison(record, job, outcome, guard)
        if isinstance(outcome, Succeeded):
            inputs = changed_inputs(reexport.original_manifest, outcome.manifest)
            if inputs is not None:
                changes["changed_inputs"] = inputs
        return changes

    def _comparison(
        self, record: Reexport, job: Job, outcome: Succeeded | Superseded, guard: Guard
    ) -> ComparisonSummary:
        if isinstance(outcome, Superseded):
            return ComparisonSummary(compared=False, reason=_BY_INTERNAL_SERVICE)
        if guard is Guard.ENDED or self._comparer is None:
            return ComparisonSummary(compared=False, reason=_LATE)
        return self._comparer.compare(record, job, outcome.file)


def success_changes(
    record: Reexport, new_file: FileReference, now: str, *, expires_at: datetime | None
) -> dict[str, Any]:
    """A re-export completed by a new file, whoever stored it (the pipeline or an internal service).

    matches_original compares sha256 only, so it is known even when the original file is gone. The record
    carries the file's own expiry: after it no download URL is handed out, and until it the file is kept.
    """
    original = record.original_file
    changes: dict[str, Any] = {
        "status": ReexportStatus.SUCCEEDED,
        "new_file": new_file,
        "matches_original": original is not None and original.sha256 == new_file.sha256,
        "completed_at": now,
        "updated_at": now,
    }
    if expires_at is not None:
        changes["expires_at"] = format_timestamp(expires_at)
    return changes


def changed_inputs(original: dict[str, Any] | None, new: dict[str, Any] | None) -> ChangedInputs | None:
    """Which inputs differ between the original's manifest and the new one (None where either is unknown)."""
    if not original or not new:
        return None

    def differs(first: Any, second: Any) -> bool | None:
        return None if first is None or second is None else first != second

    return ChangedInputs(
        definition_version=differs(
            original.get("definition", {}).get("version"), new.get("definition", {}).get("version")
        ),
        parameters=differs(original.get("parameters_sha256"), new.get("parameters_sha256")),
        source_watermark=differs(original.get("source_watermark"), new.get("source_watermark")),
    )


def job_ending(settings: Settings, table: Table, *, comparer: RowComparer | None = None) -> JobEnding:
    """The ending module on the given table, with the service's record retention."""
    return JobEnding(
        table, ReexportRepository(table), record_retention_days=settings.record_retention_days, comparer=comparer
    )


def _actor_of(outcome: Outcome, record: Reexport) -> str:
    return outcome.by if isinstance(outcome, Cancelled | Superseded) else record.requested_by


def _ended_event(final: Reexport, actor: str, context: dict[str, Any]) -> HistoryEvent:
    """The history entry on the original report: one shape for every way a re-export ends."""
    details: dict[str, Any] = {"reexport_id": final.id, "job_id": final.job_id}
    if final.status is ReexportStatus.CANCELLED:
        return new_event(
            final.report_id, HistoryEventType.REEXPORT_CANCELLED, actor=actor, details={**details, **context}
        )
    details.update(
        outcome=final.status.value,
        matches_original=final.matches_original,
        sha256=final.new_file.sha256 if final.new_file else None,
        requested_by=final.requested_by,
        reason=final.reason,
        error_code=final.error_code,
    )
    return new_event(final.report_id, HistoryEventType.REEXPORT_COMPLETED, actor=actor, details={**details, **context})
