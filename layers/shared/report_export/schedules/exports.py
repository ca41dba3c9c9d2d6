"""A scheduled export: EventBridge Scheduler fires a schedule and the firing becomes a job, through the
same code as the API's POST, for the concrete period the firing stands for.

Two kinds of schedule fire here: those declared with the stack carry their whole definition in their
input (ScheduledExport); a tenant's own schedules send only which schedule is due (ScheduleFiring),
and the definition is read from the schedule's record. Either way the idempotency key is the schedule,
the period and the definition, so a schedule fired again (Scheduler's retries, a re-run, two
firings within one period) makes no second job, and one changed within a period makes the job of
its new definition.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from report_export.aws import clients
from report_export.aws.dynamo.schedules import ScheduleRepository
from report_export.aws.dynamo.table import Table
from report_export.core.auth import Principal
from report_export.core.errors import ValidationFailed, describe_validation_errors
from report_export.core.models.common import WRITER_ROLES, now_utc
from report_export.core.models.jobs import SCHEDULED_KEY_PREFIX, CreateJobRequest
from report_export.core.models.schedules import ExportDefinition, ScheduledExport, ScheduleFiring, ScheduleRun
from report_export.core.observability import logger, metrics
from report_export.core.settings import get_settings
from report_export.jobs.service import CreateOutcome, JobService, job_service
from report_export.schedules.periods import longest_days, period_dates

_FIRING_INPUT: TypeAdapter[ScheduleFiring | ScheduledExport] = TypeAdapter(ScheduleFiring | ScheduledExport)

# What a definition holds besides its period: a job's own parameters (a ScheduledExport holds more).
_JOB_FIELDS = set(ExportDefinition.model_fields) - {"period"}


def firing_input(event: dict[str, Any]) -> ScheduleFiring | ScheduledExport:
    """A tenant schedule's firing or a declared schedule's whole input (pydantic's ValidationError otherwise)."""
    return _FIRING_INPUT.validate_python(event)


def job_request(definition: ExportDefinition, *, schedule_id: str, zone: str, fired_at: datetime) -> CreateJobRequest:
    """The job a firing at `fired_at` makes: the definition with the period's concrete dates."""
    start, end = period_dates(definition.period, fired_at, zone)
    try:
        request = CreateJobRequest.model_validate(
            {
                **definition.model_dump(include=_JOB_FIELDS, exclude_none=True),
                "start_date": start.isoformat(),
                "end_date": end.isoformat(),
            }
        )
    except ValidationError as error:
        raise ValidationFailed(describe_validation_errors(error.errors())) from None
    # One job per schedule, period and definition: a repeated firing gets its job back, and a schedule
    # changed within a period makes the job of what it now says (instead of being refused every time).
    key = f"{SCHEDULED_KEY_PREFIX}{schedule_id}:{start.isoformat()}:{end.isoformat()}:{request.parameters_hash()[:12]}"
    return request.model_copy(update={"idempotency_key": key})


class ScheduledExports:
    def __init__(self, jobs: JobService, schedules: ScheduleRepository, *, run_retention_days: int) -> None:
        self._jobs = jobs
        self._schedules = schedules
        self._run_retention = timedelta(days=run_retention_days)

    def check_definition(self, definition: ExportDefinition, *, zone: str) -> None:
        """Refuse a definition whose jobs would be refused (ValidationFailed), before a schedule holds it."""
        job_request(definition, schedule_id="check", zone=zone, fired_at=now_utc())
        # Checked against the longest the period can be, not today's: "previous month" is 28 days in
        # March and 31 in August, and every firing must make a job the service accepts.
        longest = longest_days(definition.period)
        if longest > self._jobs.max_period_days:
            raise ValidationFailed(
                f"export.period: {definition.period.value} covers up to {longest} days, and a job may cover "
                f"at most {self._jobs.max_period_days}"
            )

    def fire(self, export: ScheduledExport) -> CreateOutcome:
        request = job_request(
            export, schedule_id=export.schedule_id, zone=export.time_zone, fired_at=export.scheduled_time
        )
        # The schedule acts as a writer of its own tenant, and the job says which schedule asked.
        principal = Principal(
            subject=f"schedule:{export.schedule_id}", tenant_id=export.tenant_id, roles=frozenset(WRITER_ROLES)
        )
        outcome = self._jobs.create_job(principal, request, schedule_id=export.schedule_id)
        logger.info(
            "Scheduled export fired",
            extra={"schedule_id": export.schedule_id, "job_id": outcome.job.id, "replayed": outcome.replayed},
        )
        return outcome

    def fire_tenant_schedule(self, firing: ScheduleFiring) -> CreateOutcome | None:
        """The job for a tenant schedule's firing, or None when the schedule is gone or switched off
        (a firing already on its way when it was deleted or disabled makes nothing)."""
        stored = self._schedules.get(firing.tenant_id, firing.schedule_id, consistent=True)
        if stored is None or stored.deleting or not stored.schedule.enabled:
            state = "deleted" if stored is None or stored.deleting else "disabled"
            logger.warning("A schedule fired that is no longer active", extra={"schedule_state": state})
            metrics.add_metric(name="ScheduleFiringsIgnored", unit="Count", value=1)
            return None
        schedule = stored.schedule
        outcome = self.fire(
            ScheduledExport(
                **schedule.export.model_dump(),
                schedule_id=schedule.id,
                tenant_id=schedule.tenant_id,
                time_zone=schedule.time_zone,
                scheduled_time=firing.scheduled_time,
            )
        )
        job = outcome.job
        run = ScheduleRun(
            job_id=job.id, scheduled_time=firing.scheduled_time, start_date=job.start_date, end_date=job.end_date
        )
        ttl = int((now_utc() + self._run_retention).timestamp())
        self._schedules.record_run(schedule.tenant_id, schedule.id, run, ttl=ttl)
        return outcome


def describe(outcome: CreateOutcome | None) -> dict[str, Any]:
    if outcome is None:
        return {"job_id": None, "skipped": "the schedule is deleted or disabled"}
    job = outcome.job
    return {
        "job_id": job.id,
        "replayed": outcome.replayed,
        "start_date": job.start_date.isoformat() if job.start_date else None,
        "end_date": job.end_date.isoformat() if job.end_date else None,
    }


@cache
def scheduled_exports() -> ScheduledExports:
    settings = get_settings()
    schedules = ScheduleRepository(Table(clients.dynamodb(), settings.table_name))
    return ScheduledExports(job_service(), schedules, run_retention_days=settings.record_retention_days)
