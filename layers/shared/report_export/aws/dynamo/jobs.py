"""Jobs and their idempotency keys in the table."""

from __future__ import annotations

import random
import time
from typing import Any

from botocore.exceptions import ClientError

from report_export.aws.dynamo import keys
from report_export.aws.dynamo.active_jobs import ActiveJobs
from report_export.aws.dynamo.codecs import (
    IdempotencyRecord,
    StoredJob,
    idempotency_item,
    idempotency_record,
    job_item,
    serialize,
    stored_job,
)
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.updates import (
    ConditionalUpdate,
    active_job_enter,
    announce_again_update,
    attempt_update,
    history_put,
    job_update,
    put_new,
    unannounced_done_update,
)
from report_export.core.history import HistoryEvent
from report_export.core.models.common import JobStatus, JobType
from report_export.core.models.jobs import CONTINUING, Job


class IdempotencyKeyTaken(Exception):
    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__(f"idempotency key already used for job {record.job_id}")
        self.record = record


class TenantAtCapacity(Exception):
    """The tenant already has its most jobs queued or running: nothing was written."""


class CreateKeptFailing(Exception):
    """The job's transaction was cancelled on every attempt, and no other job holds its key: nothing was
    written, and the same request may be sent again."""


# Transactions that write one idempotency key, or the tenant's active jobs, collide while both are in
# flight; the one cancelled tries again (after a random pause, so that a burst spreads out), and then
# sees the other's key or the tenant's place taken.
_CREATE_ATTEMPTS = 8
_CREATE_BACKOFF_SECONDS = 0.025
_CREATE_BACKOFF_MAX_SECONDS = 1.0


class JobRepository:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.active = ActiveJobs(table)

    def ping(self) -> None:
        """One cheap read that proves the table answers and the function may use it."""
        self.table.get(serialize(keys.HEALTH_KEY))

    def create(self, job: Job, *, params_hash: str, created: HistoryEvent, most_active: int) -> None:
        """Write a new job, its history entry "created" and its place among the tenant's active jobs; with
        an idempotency key, claim the key in the same transaction.

        Raises IdempotencyKeyTaken when the key is already claimed (by any job, finished or not), and
        TenantAtCapacity when the tenant has `most_active` jobs queued or running.
        """
        items = self.new_job_items(job, params_hash=params_hash, created=created, most_active=most_active)
        if job.idempotency_key is not None:
            items.append(put_new(self.table.name, idempotency_item(job, params_hash=params_hash)))
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                self.table.client.transact_write_items(TransactItems=items)
                return
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
            if job.idempotency_key is not None:
                record = self.idempotency_record(job.tenant_id, job.idempotency_key)
                if record is not None:
                    raise IdempotencyKeyTaken(record)
            if not self.active.has_room(job.tenant_id, most=most_active):
                raise TenantAtCapacity(job.tenant_id)
            # Cancelled for another reason: a transaction of the same key still in flight, or throttling.
            # Nothing was written, so the same transaction is tried again.
            time.sleep(random.uniform(0, min(_CREATE_BACKOFF_MAX_SECONDS, _CREATE_BACKOFF_SECONDS * 2**attempt)))
        raise CreateKeptFailing(job.id)

    def new_job_items(
        self, job: Job, *, params_hash: str, created: HistoryEvent, most_active: int
    ) -> list[dict[str, Any]]:
        """The items that write a new job, also within another transaction (a re-export's)."""
        return [
            put_new(self.table.name, job_item(job, version=1, params_hash=params_hash)),
            history_put(self.table.name, job.tenant_id, created),
            active_job_enter(self.table.name, job.tenant_id, job.id, most=most_active),
        ]

    def idempotency_record(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        item = self.table.get(
            serialize({"PK": keys.tenant_pk(tenant_id), "SK": keys.idempotency_sk(key)}), consistent=True
        )
        return idempotency_record(item) if item else None

    def get(self, tenant_id: str, job_id: str, *, consistent: bool = False) -> StoredJob | None:
        item = self.table.get(keys.job_key(tenant_id, job_id), consistent=consistent)
        return stored_job(item) if item else None

    def apply(self, update: ConditionalUpdate) -> StoredJob:
        """One conditional update of a job; the job as it is now (StaleWrite when the condition fails)."""
        return stored_job(self.table.update(update))

    def claim(self, tenant_id: str, job_id: str, *, now: str, lease_until: str) -> StoredJob | None:
        """queued → running for a new attempt; also takes over a running job whose lease ran out
        (its worker died). None when there is nothing to do: cancelled, finished or being worked on."""
        try:
            return self.apply(
                job_update(
                    tenant_id,
                    job_id,
                    {
                        "status": JobStatus.RUNNING,
                        "phase": "fetching",
                        "progress_pct": 0,
                        "rows_written": 0,
                        "lease_expires_at": lease_until,
                        "started_at": now,
                        "updated_at": now,
                    },
                    condition=(
                        "#status = :queued OR "
                        "(#status = :running AND lease_expires_at < :now AND attribute_not_exists(checkpoint))"
                    ),
                    condition_names={"#status": "status"},
                    condition_values={":queued": "queued", ":running": "running", ":now": now},
                    increments=("attempt",),
                )
            )
        except StaleWrite:
            return None

    def resume(self, tenant_id: str, job_id: str, *, now: str, lease_until: str) -> StoredJob | None:
        """A new attempt for a job whose file an earlier invocation left at a checkpoint: handed over
        (phase continuing) or dropped by a worker that died (its lease ran out). Progress, rows and the
        start time stay; None when there is nothing to resume."""
        try:
            return self.apply(
                job_update(
                    tenant_id,
                    job_id,
                    {"phase": "fetching", "lease_expires_at": lease_until, "updated_at": now},
                    condition=(
                        "#status = :running AND attribute_exists(checkpoint) "
                        "AND (#phase = :continuing OR lease_expires_at < :now)"
                    ),
                    condition_names={"#status": "status", "#phase": "phase"},
                    condition_values={":running": "running", ":continuing": CONTINUING, ":now": now},
                    increments=("attempt",),
                )
            )
        except StaleWrite:
            return None

    def update_attempt(self, current: StoredJob, changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> StoredJob:
        """Change a running job only while this attempt still owns it (StaleWrite otherwise)."""
        return self.apply(attempt_update(current, changes, remove=remove))

    def unfinished(self, status: JobStatus, *, due_before: str, limit: int) -> list[tuple[str, str]]:
        """(tenant, job id) of up to `limit` jobs in `status` that fell due before `due_before`, oldest first,
        from the sparse index of unfinished jobs (keys only: read each job again before acting on it)."""
        return self._due(keys.unfinished_pk(status), due_before, limit)

    def unannounced(self, *, due_before: str, limit: int) -> list[tuple[str, str]]:
        """(tenant, job id) of up to `limit` ended jobs not announced, due before `due_before`, oldest first."""
        return self._due(keys.UNANNOUNCED_PK, due_before, limit)

    def take_announcement(self, tenant_id: str, job_id: str, *, due_before: str, now: str) -> int | None:
        """This sweeper announces the job again: how many times it has been tried so far, this one included;
        None when it is no longer due (announced, or taken by another sweeper)."""
        try:
            item = self.table.update(announce_again_update(tenant_id, job_id, due_before=due_before, now=now))
        except StaleWrite:
            return None
        return int(item["announce_attempts"]["N"])

    def forget_announcement(self, tenant_id: str, job_id: str) -> None:
        self.table.update(unannounced_done_update(tenant_id, job_id))

    def _due(self, pk: str, due_before: str, limit: int) -> list[tuple[str, str]]:
        found, _ = self.table.read_page(
            {
                "IndexName": keys.UNFINISHED_INDEX,
                "KeyConditionExpression": "GSI3PK = :pk AND GSI3SK < :due",
                "ExpressionAttributeValues": serialize({":pk": pk, ":due": due_before}),
                "ScanIndexForward": True,
            },
            None,
            limit=limit,
            filtered=False,
        )
        return [
            (item["PK"]["S"].removeprefix("TENANT#"), item["SK"]["S"].removeprefix(keys.JOB_PREFIX)) for item in found
        ]

    def query(
        self,
        tenant_id: str,
        *,
        status: JobStatus | None,
        job_type: JobType | None,
        limit: int,
        after_job_id: str | None,
        expired: bool | None = None,
        now: str = "",
    ) -> tuple[list[StoredJob], bool]:
        """Newest first. Returns up to `limit` jobs and whether more match after them.

        With both filters the status index is read and the type filtered, so the loop keeps
        reading until the page is full or the index is exhausted: a page is never short
        while matches remain.
        """
        pk = keys.tenant_pk(tenant_id)
        query: dict[str, Any] = {"ScanIndexForward": False}
        start_key: dict[str, Any] | None = None
        filters: list[str] = []
        filter_values: dict[str, Any] = {}
        if expired is not None:
            # Whether its file's time is over (a job without a file never expires).
            filters.append(
                "expires_at <= :now" if expired else "(attribute_not_exists(expires_at) OR expires_at > :now)"
            )
            filter_values[":now"] = now
        if status is not None:
            query["IndexName"] = keys.BY_STATUS_INDEX
            query["KeyConditionExpression"] = "GSI1PK = :pk"
            key_values: dict[str, Any] = {":pk": keys.status_pk(tenant_id, status)}
            if after_job_id:
                start_key = {"GSI1PK": key_values[":pk"], "GSI1SK": keys.job_sk(after_job_id)}
            if job_type is not None:
                filters.append("job_type = :job_type")
                filter_values[":job_type"] = job_type.value
        elif job_type is not None:
            query["IndexName"] = keys.BY_TYPE_INDEX
            query["KeyConditionExpression"] = "GSI2PK = :pk"
            key_values = {":pk": keys.type_pk(tenant_id, job_type)}
            if after_job_id:
                start_key = {"GSI2PK": key_values[":pk"], "GSI2SK": keys.job_sk(after_job_id)}
        else:
            query["KeyConditionExpression"] = "PK = :pk AND begins_with(SK, :job_prefix)"
            key_values = {":pk": pk, ":job_prefix": "JOB#"}
        if after_job_id:
            start_key = {**(start_key or {}), "PK": pk, "SK": keys.job_sk(after_job_id)}
        if filters:
            query["FilterExpression"] = " AND ".join(filters)
        query["ExpressionAttributeValues"] = serialize({**key_values, **filter_values})
        found, more = self.table.read_page(query, start_key, limit=limit, filtered=bool(filters))
        return [stored_job(item) for item in found], more
