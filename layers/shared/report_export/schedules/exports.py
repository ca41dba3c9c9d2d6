"""A scheduled export: EventBridge Scheduler fires a schedule whose input names a tenant, a report and a
relative period; the firing becomes a job through the same code as the API's POST.

The idempotency key is the schedule and the concrete period, so a schedule fired again (Scheduler's
retries, a re-run, two firings within the same period) makes no second job.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from report_export.core.auth import Principal
from report_export.core.models.common import (
    ID_PATTERN,
    WRITER_ROLES,
    Compression,
    ExportFormat,
    FilterName,
    FilterValue,
    JobType,
    ScopeId,
)
from report_export.core.models.jobs import CreateJobRequest
from report_export.core.observability import logger
from report_export.jobs.service import CreateOutcome, JobService, job_service
from report_export.schedules.periods import RelativePeriod, period_dates, time_zone

ScheduleId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]


class ScheduledExport(BaseModel):
    """The input a schedule sends: what to export, for which tenant, over which relative period."""

    model_config = ConfigDict(extra="forbid")

    schedule_id: ScheduleId
    tenant_id: ScopeId
    job_type: JobType
    format: ExportFormat = ExportFormat.CSV
    compression: Compression | None = None
    farm_id: ScopeId | None = None
    barn_id: ScopeId | None = None
    batch_id: ScopeId | None = None
    filters: dict[FilterName, FilterValue] | None = None
    period: RelativePeriod
    time_zone: str = Field("UTC", description="IANA time zone the period's days are counted in")
    # Filled in by Scheduler (<aws.scheduler.scheduled-time>): the moment the firing stands for.
    scheduled_time: datetime

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        time_zone(value)
        return value

    @field_validator("scheduled_time")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("scheduled_time must carry its time zone")
        return value


class ScheduledExports:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    def fire(self, export: ScheduledExport) -> CreateOutcome:
        start, end = period_dates(export.period, export.scheduled_time, export.time_zone)
        request = CreateJobRequest.model_validate(
            {
                **export.model_dump(
                    include={"job_type", "format", "compression", "farm_id", "barn_id", "batch_id", "filters"},
                    exclude_none=True,
                ),
                "start_date": start.isoformat(),
                "end_date": end.isoformat(),
                "idempotency_key": f"schedule:{export.schedule_id}:{start.isoformat()}:{end.isoformat()}",
            }
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


def describe(outcome: CreateOutcome) -> dict[str, Any]:
    job = outcome.job
    return {
        "job_id": job.id,
        "replayed": outcome.replayed,
        "start_date": job.start_date.isoformat() if job.start_date else None,
        "end_date": job.end_date.isoformat() if job.end_date else None,
    }


@cache
def scheduled_exports() -> ScheduledExports:
    return ScheduledExports(job_service())
