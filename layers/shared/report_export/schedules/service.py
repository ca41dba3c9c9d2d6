"""The schedules use cases: a tenant's own scheduled exports, created, read, changed and deleted.

Everything a schedule holds is checked before anything is written: the expression and time zone as
EventBridge Scheduler reads them, the window, and the export definition as a job of it would be.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from functools import cache

from uuid6 import uuid7

from report_export.aws import clients
from report_export.aws.dynamo.codecs import StoredSchedule
from report_export.aws.dynamo.schedules import ScheduleRepository
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.tenant_counts import CountFull
from report_export.core.auth import Principal
from report_export.core.errors import (
    ConcurrentUpdate,
    NotFound,
    TooManySchedules,
    ValidationFailed,
    VersionConflict,
)
from report_export.core.models.common import JOB_ID_PATTERN, JobStatus, format_timestamp, now_utc
from report_export.core.models.schedules import Schedule, ScheduleSpec
from report_export.core.observability import logger, metrics
from report_export.core.settings import get_settings
from report_export.schedules.exports import ScheduledExports, scheduled_exports
from report_export.schedules.expressions import (
    Expression,
    InvalidExpression,
    Rate,
    canonical_expression,
    next_firing,
    parse_expression,
)
from report_export.schedules.sync import ScheduleSync, next_firing_of, schedule_sync

_SCHEDULE_ID_RE = re.compile(JOB_ID_PATTERN)
LAST_RUNS = 10
# A delete without a version read again as often when another change lands between its read and its write.
_DELETE_ATTEMPTS = 3
# What, when changed, starts a rate schedule's intervals again.
_TIMING_FIELDS = ("expression", "time_zone", "start_at")
# What decides when a schedule fires.
_TIMING = (*_TIMING_FIELDS, "end_at", "enabled")


class ScheduleService:
    def __init__(self, repository: ScheduleRepository, sync: ScheduleSync, exports: ScheduledExports) -> None:
        self._repository = repository
        self._sync = sync
        self._exports = exports

    def create_schedule(self, principal: Principal, spec: ScheduleSpec) -> Schedule:
        moment = now_utc()
        spec = self._checked(spec, moment)
        schedule = Schedule(
            **_spec_fields(spec),
            id=str(uuid7()),
            tenant_id=principal.tenant_id,
            version=1,
            created_at=moment,
            created_by=principal.subject,
            updated_at=moment,
            updated_by=principal.subject,
        )
        try:
            stored = self._sync.create(StoredSchedule(schedule, expression_set_at=format_timestamp(moment)))
        except CountFull as limit:
            raise TooManySchedules(
                f"This tenant already has {limit.at_most} schedules, the most it may have; delete one first"
            ) from None
        logger.info("Schedule created", extra={"schedule_id": schedule.id})
        metrics.add_metric(name="SchedulesCreated", unit="Count", value=1)
        return self._shown(stored, moment)

    def get_schedule(self, principal: Principal, schedule_id: str) -> Schedule:
        stored = self._load(principal, schedule_id)
        schedule = self._shown(stored, now_utc())
        runs = self._repository.runs(principal.tenant_id, schedule_id, limit=LAST_RUNS)
        statuses = self._repository.job_statuses(principal.tenant_id, [run.job_id for run in runs])
        last_runs = [
            run.model_copy(update={"status": JobStatus(statuses[run.job_id]) if run.job_id in statuses else None})
            for run in runs
        ]
        return schedule.model_copy(update={"last_runs": last_runs})

    def list_schedules(
        self, principal: Principal, *, limit: int, after: str | None
    ) -> tuple[list[Schedule], str | None]:
        """Newest first: a page of schedules after `after`, and the id to continue after when more follow."""
        found, more = self._repository.query(principal.tenant_id, limit=limit, after_schedule_id=after)
        moment = now_utc()
        return [self._shown(stored, moment) for stored in found], found[-1].schedule.id if more and found else None

    def update_schedule(
        self, principal: Principal, schedule_id: str, spec: ScheduleSpec, *, expected_version: int
    ) -> Schedule:
        current = self._load(principal, schedule_id, consistent=True)
        _check_version(current, expected_version)
        moment = now_utc()
        spec = self._checked(spec, moment, current=current.schedule)
        old = current.schedule
        schedule = Schedule.model_validate(
            {
                **old.model_dump(),
                **_spec_fields(spec),
                "version": current.version + 1,
                "updated_at": moment,
                "updated_by": principal.subject,
            }
        )
        timing_changed = any(getattr(old, name) != getattr(schedule, name) for name in _TIMING_FIELDS)
        wanted = StoredSchedule(
            schedule,
            expression_set_at=format_timestamp(moment) if timing_changed else current.expression_set_at,
        )
        try:
            stored = self._sync.update(current, wanted)
        except StaleWrite:
            raise self._refusal(principal, schedule_id, expected_version) from None
        logger.info("Schedule updated", extra={"schedule_id": schedule_id})
        return self._shown(stored, moment)

    def delete_schedule(self, principal: Principal, schedule_id: str, *, expected_version: int | None) -> None:
        """At the version read when one is given; otherwise whatever version it is at, read again when a
        change lands between the read and the delete."""
        for attempt in range(1, _DELETE_ATTEMPTS + 1):
            current = self._load(principal, schedule_id, consistent=True)
            wanted_version = current.version if expected_version is None else expected_version
            _check_version(current, wanted_version)
            try:
                self._sync.delete(current)
                break
            except StaleWrite:
                if expected_version is not None or attempt == _DELETE_ATTEMPTS:
                    raise self._refusal(principal, schedule_id, wanted_version) from None
        logger.info("Schedule deleted", extra={"schedule_id": schedule_id})
        metrics.add_metric(name="SchedulesDeleted", unit="Count", value=1)

    def _checked(self, spec: ScheduleSpec, moment: datetime, *, current: Schedule | None = None) -> ScheduleSpec:
        """The schedule as it will be stored (its expression in the form Scheduler is sent), once every
        part of it is known to be acceptable (ValidationFailed otherwise)."""
        try:
            expression = parse_expression(spec.expression)
        except InvalidExpression as error:
            raise ValidationFailed(f"expression: {error}") from None
        if not _at_most_hourly(expression):
            raise ValidationFailed(
                "expression: a schedule fires at most once an hour (its jobs cover whole days, so a firing "
                "within the hour would only make the same job again): name one minute, or a rate of an hour or more"
            )
        if spec.start_at and spec.end_at and spec.end_at <= spec.start_at:
            raise ValidationFailed("end_at must be after start_at")
        self._exports.check_definition(spec.export, zone=spec.time_zone)
        expression_text = canonical_expression(spec.expression)
        spec = spec.model_copy(update={"expression": expression_text})
        # A schedule that is to fire must have a firing left. One that is switched off, or whose timing is
        # left as it was (a finished schedule renamed, say), may be written whatever its timing.
        timing_changed = current is None or any(getattr(current, name) != getattr(spec, name) for name in _TIMING)
        if spec.enabled and timing_changed:
            if spec.end_at and spec.end_at <= moment:
                raise ValidationFailed("end_at is in the past: the schedule would never fire")
            upcoming = next_firing(
                expression, spec.time_zone, after=moment, anchor=moment, start_at=spec.start_at, end_at=spec.end_at
            )
            if upcoming is None:
                window = " before end_at" if spec.end_at else ""
                raise ValidationFailed(f"the schedule would never fire: no time to come matches its expression{window}")
        return spec

    def _shown(self, stored: StoredSchedule, moment: datetime) -> Schedule:
        schedule = stored.schedule
        if not schedule.enabled:
            return schedule
        return schedule.model_copy(update={"next_firing_at": next_firing_of(stored, after=moment)})

    def _load(self, principal: Principal, schedule_id: str, *, consistent: bool = False) -> StoredSchedule:
        # Another tenant's schedule, a malformed id and a deleted schedule all look the same from outside.
        stored = None
        if _SCHEDULE_ID_RE.match(schedule_id):
            stored = self._repository.get(principal.tenant_id, schedule_id, consistent=consistent)
        if stored is None or stored.deleting:
            raise NotFound("Schedule not found")
        logger.append_keys(schedule_id=schedule_id)
        return stored

    def _refusal(self, principal: Principal, schedule_id: str, expected_version: int) -> Exception:
        """Why a conditional write of the schedule was refused, read again."""
        current = self._load(principal, schedule_id, consistent=True)
        if current.version != expected_version:
            return _version_conflict(current)
        return ConcurrentUpdate("The schedule is being changed by another request; read it again shortly")


def _at_most_hourly(expression: Expression) -> bool:
    if isinstance(expression, Rate):
        return expression.interval >= timedelta(hours=1)
    return len(expression.minutes) == 1


def _spec_fields(spec: ScheduleSpec) -> dict[str, object]:
    """The schedule as asked for, without what a request adds (the version read)."""
    return spec.model_dump(include=set(ScheduleSpec.model_fields))


def _check_version(current: StoredSchedule, expected_version: int) -> None:
    if current.version != expected_version:
        raise _version_conflict(current)
    if current.pending_since is not None:
        raise ConcurrentUpdate("The schedule is being changed by another request; read it again shortly")


def _version_conflict(current: StoredSchedule) -> VersionConflict:
    return VersionConflict(
        f"The schedule has changed since you read it (it is at version {current.version}); read it again"
    )


@cache
def schedule_service() -> ScheduleService:
    settings = get_settings()
    table = Table(clients.dynamodb(), settings.table_name)
    return ScheduleService(ScheduleRepository(table), schedule_sync(settings, table), scheduled_exports())
