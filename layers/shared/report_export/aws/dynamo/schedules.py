"""Tenants' schedules and their runs in the table.

Every write of a schedule replaces the whole item under a condition on the version it was read at,
so a write that lost a race is refused (StaleWrite) instead of undoing the other one.
"""

from __future__ import annotations

from report_export.aws.dynamo import keys
from report_export.aws.dynamo.codecs import (
    StoredSchedule,
    schedule_item,
    schedule_run,
    schedule_run_item,
    serialize,
    stored_schedule,
)
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.tenant_counts import TenantCount
from report_export.aws.dynamo.updates import put_new
from report_export.core.models.schedules import ScheduleRun

_AT_VERSION = "#version = :version"
_VERSION_NAMES = {"#version": "version"}


class ScheduleRepository:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.counts = TenantCount(table, keys.schedule_count_key)

    def get(self, tenant_id: str, schedule_id: str, *, consistent: bool = False) -> StoredSchedule | None:
        item = self.table.get(keys.schedule_key(tenant_id, schedule_id), consistent=consistent)
        return stored_schedule(item) if item else None

    def create(self, stored: StoredSchedule, *, at_most: int) -> None:
        """The new record and the tenant's count of schedules, in one transaction.

        Raises CountFull when the tenant already has `at_most` schedules, StaleWrite when the
        transaction is refused for another reason."""
        self.counts.add_with(
            stored.schedule.tenant_id, [put_new(self.table.name, schedule_item(stored))], at_most=at_most
        )

    def replace(self, stored: StoredSchedule, *, at_version: int, unless_pending: bool = False) -> None:
        """Write the schedule as given over the one read at `at_version` (StaleWrite when it moved on, or,
        with unless_pending, when a change of it is still being applied)."""
        condition = _AT_VERSION + (" AND attribute_not_exists(pending_since)" if unless_pending else "")
        self.table.put(
            schedule_item(stored), condition=condition, names=_VERSION_NAMES, values={":version": at_version}
        )

    def delete(self, tenant_id: str, schedule_id: str, *, at_version: int) -> None:
        """The record gone and the tenant's count down by one, in one transaction (StaleWrite when the
        record is no longer at `at_version`)."""
        record = {
            "Delete": {
                "TableName": self.table.name,
                "Key": keys.schedule_key(tenant_id, schedule_id),
                "ConditionExpression": _AT_VERSION,
                "ExpressionAttributeNames": _VERSION_NAMES,
                "ExpressionAttributeValues": serialize({":version": at_version}),
            }
        }

        def still_at_version() -> bool:
            current = self.get(tenant_id, schedule_id, consistent=True)
            return current is not None and current.version == at_version

        self.counts.remove_with(tenant_id, [record], still_wanted=still_at_version)

    def count(self, tenant_id: str) -> int:
        return self.counts.current(tenant_id)

    def query(self, tenant_id: str, *, limit: int, after_schedule_id: str | None) -> tuple[list[StoredSchedule], bool]:
        """Newest first, like jobs and re-exports; schedules being deleted are left out."""
        pk = keys.tenant_pk(tenant_id)
        query = {
            "ScanIndexForward": False,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "FilterExpression": "attribute_not_exists(deleting)",
            "ExpressionAttributeValues": serialize({":pk": pk, ":prefix": keys.schedule_sk("")}),
        }
        start_key = {"PK": pk, "SK": keys.schedule_sk(after_schedule_id)} if after_schedule_id else None
        found, more = self.table.read_page(query, start_key, limit=limit, filtered=True)
        return [stored_schedule(item) for item in found], more

    def pending(self, *, stale_before: str, limit: int) -> list[tuple[str, str]]:
        """(tenant, schedule id) of changes left half-applied since before `stale_before`, oldest first."""
        response = self.table.client.query(
            TableName=self.table.name,
            IndexName=keys.UNFINISHED_INDEX,
            KeyConditionExpression="GSI3PK = :pk AND GSI3SK < :before",
            ExpressionAttributeValues=serialize({":pk": keys.SCHEDULE_SYNC_PK, ":before": stale_before}),
            Limit=limit,
        )
        found = []
        for item in response.get("Items", []):
            _, tenant_id, schedule_id = item["GSI3SK"]["S"].rsplit("#", 2)
            found.append((tenant_id, schedule_id))
        return found

    def record_run(self, tenant_id: str, schedule_id: str, run: ScheduleRun, *, ttl: int) -> None:
        """Note a firing's job under its schedule; a retried firing (same job) keeps the first note."""
        try:
            self.table.put(
                schedule_run_item(tenant_id, schedule_id, run, ttl=ttl),
                condition="attribute_not_exists(PK)",
                names={},
                values={},
            )
        except StaleWrite:
            pass

    def runs(self, tenant_id: str, schedule_id: str, *, limit: int) -> list[ScheduleRun]:
        """The schedule's latest runs, newest period first (within a period, the latest job first)."""
        response = self.table.client.query(
            TableName=self.table.name,
            ScanIndexForward=False,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues=serialize(
                {":pk": keys.tenant_pk(tenant_id), ":prefix": keys.schedule_runs_prefix(schedule_id)}
            ),
            Limit=limit,
        )
        return [schedule_run(item) for item in response.get("Items", [])]

    def job_statuses(self, tenant_id: str, job_ids: list[str]) -> dict[str, str]:
        """The current status of each of the tenant's jobs named (those that still exist)."""
        found = self.table.get_many([keys.job_key(tenant_id, job_id) for job_id in job_ids[:100]])
        return {item["SK"]["S"].removeprefix(keys.job_sk("")): item["status"]["S"] for item in found}
