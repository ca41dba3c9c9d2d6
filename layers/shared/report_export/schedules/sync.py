"""A tenant schedule lives in two places: its record in the table (what the API shows and what a firing
reads) and its schedule in EventBridge Scheduler (what fires). No transaction spans both, so every
change goes in three steps:

1. the record is written as it will be, marked pending (and put in the sparse index of pending changes);
2. Scheduler is made to match it;
3. the mark is cleared.

When step 2 fails the change is rolled back (Scheduler and record as they were, the record under a new
version) and the caller learns why. When the process dies between the steps, or a rollback cannot
finish, the record is still marked: the sweeper finds it once it is older than
SCHEDULE_SYNC_STALE_AFTER_SEC and completes it from the record, which is what both hold from then on.
While a change is pending, other writes of the schedule are refused (409 CONCURRENT_UPDATE).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from report_export.aws.dynamo.codecs import StoredSchedule
from report_export.aws.dynamo.schedules import ScheduleRepository
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.scheduler import SchedulerRefused, SchedulerSchedule, TenantSchedules, tenant_schedules
from report_export.core.errors import ServiceError, ServiceUnavailable, ValidationFailed
from report_export.core.models.common import format_timestamp, now_utc
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings
from report_export.schedules.expressions import Rate, next_firing, parse_expression

_UNAVAILABLE = "EventBridge Scheduler could not be reached; the schedule is unchanged, try again"
_LEFT_PENDING = (
    "EventBridge Scheduler could not be reached and the change could not be undone: it is kept and will be "
    "applied within minutes; read the schedule before trying again"
)


def next_firing_of(stored: StoredSchedule, *, after: datetime) -> datetime | None:
    """When the schedule fires next after `after` (None when it never does), as Scheduler will fire it."""
    schedule = stored.schedule
    return next_firing(
        parse_expression(schedule.expression),
        schedule.time_zone,
        after=after,
        anchor=_rate_anchor(stored),
        start_at=schedule.start_at,
        end_at=schedule.end_at,
    )


def scheduler_schedule(stored: StoredSchedule) -> SchedulerSchedule:
    schedule = stored.schedule
    start_at = schedule.start_at
    if isinstance(parse_expression(schedule.expression), Rate):
        # Scheduler counts a rate from its StartDate, or from the moment of each create or update without
        # one (and takes no StartDate in the past): it is sent the next firing on the schedule's own grid,
        # so that it fires when the API says, whenever the schedule was last written.
        start_at = next_firing_of(
            replace(stored, schedule=schedule.model_copy(update={"end_at": None})), after=now_utc()
        )
    return SchedulerSchedule(
        tenant_id=schedule.tenant_id,
        schedule_id=schedule.id,
        expression=schedule.expression,
        time_zone=schedule.time_zone,
        enabled=schedule.enabled,
        start_at=start_at,
        end_at=schedule.end_at,
        description=schedule.description,
    )


def _rate_anchor(stored: StoredSchedule) -> datetime:
    if stored.expression_set_at:
        return datetime.fromisoformat(stored.expression_set_at)
    return stored.schedule.created_at


class ScheduleSync:
    def __init__(
        self,
        repository: ScheduleRepository,
        scheduler: TenantSchedules,
        *,
        stale_after_seconds: int,
        most_per_tenant: int,
    ) -> None:
        self._repository = repository
        self._scheduler = scheduler
        self._stale_after = timedelta(seconds=stale_after_seconds)
        self._most_per_tenant = most_per_tenant

    def create(self, wanted: StoredSchedule) -> StoredSchedule:
        """Raises CountFull, before anything is written, when the tenant has its most schedules."""
        pending = _pending(wanted)
        self._repository.create(pending, at_most=self._most_per_tenant)
        try:
            self._scheduler.put(scheduler_schedule(pending))
        except (SchedulerRefused, ClientError, BotoCoreError) as error:
            rolled_back = True
            try:
                if _may_have_applied(error):
                    self._scheduler.delete(pending.schedule.tenant_id, pending.schedule.id)
                self._repository.delete(pending.schedule.tenant_id, pending.schedule.id, at_version=pending.version)
            except (ClientError, BotoCoreError, StaleWrite):
                rolled_back = _rollback_failed(pending)
            raise _failure(error, rolled_back=rolled_back) from None
        return self._settle(pending)

    def update(self, current: StoredSchedule, wanted: StoredSchedule) -> StoredSchedule:
        """Raises StaleWrite when the record is no longer at current's version or has a change pending."""
        pending = _pending(wanted)
        self._repository.replace(pending, at_version=current.version, unless_pending=True)
        try:
            self._scheduler.put(scheduler_schedule(pending))
        except (SchedulerRefused, ClientError, BotoCoreError) as error:
            rolled_back = self._restore(current, pending, scheduler_changed=_may_have_applied(error))
            raise _failure(error, rolled_back=rolled_back) from None
        return self._settle(pending)

    def delete(self, current: StoredSchedule) -> None:
        """Raises StaleWrite when the record is no longer at current's version or has a change pending."""
        schedule = current.schedule
        pending = _pending(
            replace(current, schedule=schedule.model_copy(update={"version": current.version + 1}), deleting=True)
        )
        self._repository.replace(pending, at_version=current.version, unless_pending=True)
        try:
            self._scheduler.delete(schedule.tenant_id, schedule.id)
        except (ClientError, BotoCoreError) as error:
            rolled_back = self._restore(current, pending, scheduler_changed=_may_have_applied(error))
            raise _failure(error, rolled_back=rolled_back) from None
        try:
            self._repository.delete(schedule.tenant_id, schedule.id, at_version=pending.version)
        except (ClientError, BotoCoreError, StaleWrite):
            # Scheduler's schedule is gone and the record says deleting (the API no longer shows it):
            # the sweeper removes the record.
            logger.warning("A deleted schedule's record is left for the sweeper", extra={"schedule_id": schedule.id})

    def repair(self, tenant_id: str, schedule_id: str) -> bool:
        """Complete a change left pending for longer than the stale threshold; False when there was none."""
        stored = self._repository.get(tenant_id, schedule_id, consistent=True)
        if stored is None or stored.pending_since is None or stored.pending_since >= self.stale_before():
            return False
        if stored.deleting:
            self._scheduler.delete(tenant_id, schedule_id)
            try:
                self._repository.delete(tenant_id, schedule_id, at_version=stored.version)
            except StaleWrite:
                return False
        else:
            try:
                self._scheduler.put(scheduler_schedule(stored))
            except SchedulerRefused as refused:
                # What the record holds was validated when it was written; if Scheduler now refuses it the
                # record stays pending (and counted) for someone to look at, rather than firing wrongly.
                logger.error("Scheduler refuses a pending schedule", extra={"reason": str(refused)})
                metrics.add_metric(name="ScheduleRepairsRefused", unit="Count", value=1)
                return False
            self._settle(stored)
        logger.info("A half-applied schedule change was completed", extra={"schedule_id": schedule_id})
        metrics.add_metric(name="ScheduleChangesRepaired", unit="Count", value=1)
        return True

    def stale(self, *, limit: int) -> list[tuple[str, str]]:
        """(tenant, schedule id) of the changes pending for longer than the stale threshold, oldest first."""
        return self._repository.pending(stale_before=self.stale_before(), limit=limit)

    def stale_before(self) -> str:
        return format_timestamp(now_utc() - self._stale_after)

    def _settle(self, pending: StoredSchedule) -> StoredSchedule:
        settled = replace(pending, pending_since=None)
        try:
            self._repository.replace(settled, at_version=pending.version)
        except (ClientError, BotoCoreError, StaleWrite):
            # Both already hold the change; only the mark is left, and the sweeper clears it.
            logger.warning("A schedule change is applied but still marked pending", extra={"id": pending.schedule.id})
        return settled

    def _restore(self, current: StoredSchedule, pending: StoredSchedule, *, scheduler_changed: bool) -> bool:
        """Put Scheduler and the record back as they were, the record under a version of its own."""
        restored = replace(current, schedule=current.schedule.model_copy(update={"version": pending.version + 1}))
        try:
            if scheduler_changed:
                self._scheduler.put(scheduler_schedule(current))
            self._repository.replace(restored, at_version=pending.version)
        except (SchedulerRefused, ClientError, BotoCoreError, StaleWrite):
            return _rollback_failed(pending)
        return True


def _may_have_applied(error: Exception) -> bool:
    """Whether Scheduler may hold the change despite the error: a refusal or a request that never left
    (no connection) changed nothing; a timeout or a server error may have come after the change."""
    return not isinstance(error, SchedulerRefused | EndpointConnectionError | ConnectTimeoutError)


def _pending(stored: StoredSchedule) -> StoredSchedule:
    return replace(stored, pending_since=format_timestamp(now_utc()))


def _failure(error: Exception, *, rolled_back: bool) -> ServiceError:
    if not rolled_back:
        return ServiceUnavailable(_LEFT_PENDING)
    if isinstance(error, SchedulerRefused):
        return ValidationFailed(f"EventBridge Scheduler refused the schedule: {error}")
    logger.error("EventBridge Scheduler failed", extra={"reason": str(error)})
    return ServiceUnavailable(_UNAVAILABLE)


def _rollback_failed(pending: StoredSchedule) -> bool:
    # The record keeps its pending mark, so the sweeper completes the change from it: both end up agreeing.
    logger.error("A schedule change could not be rolled back", extra={"schedule_id": pending.schedule.id})
    metrics.add_metric(name="ScheduleRollbacksFailed", unit="Count", value=1)
    return False


def schedule_sync(settings: Settings, table: Table) -> ScheduleSync:
    return ScheduleSync(
        ScheduleRepository(table),
        tenant_schedules(settings),
        stale_after_seconds=settings.schedule_sync_stale_after_seconds,
        most_per_tenant=settings.max_schedules_per_tenant,
    )
