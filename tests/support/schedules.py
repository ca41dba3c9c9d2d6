"""Tenant schedules in tests: a valid definition, what EventBridge Scheduler holds, a Scheduler that
cannot be reached, and a change left half-applied as a process that died between the writes leaves it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest

from report_export.aws import clients
from report_export.aws.dynamo.codecs import StoredSchedule
from report_export.aws.dynamo.schedules import ScheduleRepository
from report_export.aws.scheduler import schedule_name
from report_export.core.models.common import format_timestamp, now_utc
from report_export.schedules.exports import scheduled_exports
from report_export.schedules.service import schedule_service
from report_export.sweeping.sweeper import sweeper

from support.tables import table

SCHEDULES = "/api/v1/reports/schedules"
GROUP = "report-export-test"


def valid_schedule(**overrides: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {
        "description": "monthly feed intake",
        "expression": "cron(0 6 1 * ? *)",
        "time_zone": "Europe/Oslo",
        "export": {"job_type": "FEED_INTAKE_EXPORT", "format": "csv", "farm_id": "farm-1", "period": "previous_month"},
    }
    schedule.update(overrides)
    return schedule


def scheduler_schedule(tenant_id: str, schedule_id: str) -> dict[str, Any] | None:
    """The schedule as EventBridge Scheduler holds it, or None."""
    scheduler = boto3.client("scheduler")
    try:
        return scheduler.get_schedule(GroupName=GROUP, Name=schedule_name(tenant_id, schedule_id))
    except scheduler.exceptions.ResourceNotFoundException:
        return None


def scheduler_names() -> list[str]:
    return [item["Name"] for item in boto3.client("scheduler").list_schedules(GroupName=GROUP)["Schedules"]]


def schedule_items(aws: Any) -> list[dict[str, Any]]:
    """Every schedule record and run in the table, whatever the tenant."""
    return [
        item
        for item in aws.dynamodb.scan(TableName=aws.table_name)["Items"]
        if item["SK"]["S"].startswith(("SCHEDULE#", "SCHEDULE_RUN#"))
    ]


def schedule_repository() -> ScheduleRepository:
    return ScheduleRepository(table())


def cut_off_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    """EventBridge Scheduler cannot be reached (nothing listens there): every call fails to connect."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SCHEDULER", "http://127.0.0.1:9")
    _new_clients()


def restore_scheduler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_SCHEDULER")
    _new_clients()


def _new_clients() -> None:
    clients.reset()
    schedule_service.cache_clear()
    scheduled_exports.cache_clear()
    sweeper.cache_clear()


def leave_half_applied(stored: StoredSchedule, *, minutes_ago: int = 10, **changes: Any) -> StoredSchedule:
    """The record as step one of a change writes it (pending), as if the process died before Scheduler."""
    pending = replace(
        stored,
        schedule=stored.schedule.model_copy(update={**changes, "version": stored.version + 1}),
        pending_since=format_timestamp(now_utc() - timedelta(minutes=minutes_ago)),
    )
    schedule_repository().replace(pending, at_version=stored.version)
    return pending
