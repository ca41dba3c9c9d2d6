"""EventBridge Scheduler: the tenants' schedules, in one schedule group of the stage.

A schedule's name is derived from its tenant and id, never taken from a client, and its target input
names only the tenant and the schedule: whatever fires, the scheduled-export function reads what to
export from the schedule's record under that tenant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from report_export.aws import clients
from report_export.core.models.common import now_utc
from report_export.core.settings import Settings

# Scheduler refuses a StartDate more than five minutes in the past; a schedule that has started is sent
# without one (it changes nothing: the past has no firings left).
_START_DATE_GRACE = timedelta(minutes=5)
_REFUSALS = ("ValidationException", "ConflictException", "ServiceQuotaExceededException")


class SchedulerRefused(Exception):
    """Scheduler turned the schedule down as asked (its message says why); nothing was changed."""


@dataclass(frozen=True, slots=True)
class TargetSettings:
    function_arn: str
    role_arn: str
    dead_letter_arn: str | None = None


@dataclass(frozen=True, slots=True)
class SchedulerSchedule:
    tenant_id: str
    schedule_id: str
    expression: str
    time_zone: str
    enabled: bool
    start_at: datetime | None
    end_at: datetime | None
    description: str | None


def schedule_name(tenant_id: str, schedule_id: str) -> str:
    # Scheduler names are at most 64 characters of [A-Za-z0-9._-]: a tenant id is shortened to a digest.
    return f"t{hashlib.sha256(tenant_id.encode()).hexdigest()[:16]}-{schedule_id}"


class TenantSchedules:
    def __init__(self, client: Any, *, group_name: str, target: TargetSettings) -> None:
        self._client = client
        self._group = group_name
        self._target = target

    def put(self, schedule: SchedulerSchedule) -> None:
        """Make Scheduler hold the schedule as given: updated if it exists, created otherwise."""
        request = self._request(schedule)
        try:
            try:
                self._client.update_schedule(**request)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
                self._client.create_schedule(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] in _REFUSALS:
                raise SchedulerRefused(error.response["Error"].get("Message") or "refused") from None
            raise

    def delete(self, tenant_id: str, schedule_id: str) -> None:
        """Remove the schedule; one that is not there is already as wanted."""
        try:
            self._client.delete_schedule(GroupName=self._group, Name=schedule_name(tenant_id, schedule_id))
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise

    def _request(self, schedule: SchedulerSchedule) -> dict[str, Any]:
        target: dict[str, Any] = {
            "Arn": self._target.function_arn,
            "RoleArn": self._target.role_arn,
            "Input": json.dumps(
                {
                    "tenant_id": schedule.tenant_id,
                    "schedule_id": schedule.schedule_id,
                    "scheduled_time": "<aws.scheduler.scheduled-time>",
                }
            ),
            # A firing is one job per period, made idempotently: retrying for an hour is safe.
            "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
        }
        if self._target.dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self._target.dead_letter_arn}
        description = f"tenant {schedule.tenant_id}: {schedule.description or 'scheduled export'}"
        request: dict[str, Any] = {
            "GroupName": self._group,
            "Name": schedule_name(schedule.tenant_id, schedule.schedule_id),
            "Description": description[:512],
            "ScheduleExpression": schedule.expression,
            "ScheduleExpressionTimezone": schedule.time_zone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED" if schedule.enabled else "DISABLED",
            "Target": target,
        }
        if schedule.start_at is not None and schedule.start_at > now_utc() - _START_DATE_GRACE:
            request["StartDate"] = schedule.start_at
        if schedule.end_at is not None:
            request["EndDate"] = schedule.end_at
        return request


def tenant_schedules(settings: Settings) -> TenantSchedules:
    target = TargetSettings(
        function_arn=settings.scheduled_export_function_arn,
        role_arn=settings.scheduler_role_arn,
        dead_letter_arn=settings.schedule_dead_letter_arn or None,
    )
    return TenantSchedules(clients.scheduler(), group_name=settings.schedule_group_name, target=target)
