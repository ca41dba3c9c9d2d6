"""Conditional writes, built once and sent either directly or as items of a TransactWriteItems request
(by this package or by the state machine, which takes them DynamoDB-typed and ready to send).

Every update bumps the item's version (optimistic locking); a status change moves the item between
ByStatus partitions in the same write.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from report_export.aws.dynamo import keys
from report_export.aws.dynamo.codecs import StoredJob, history_item, reexport_attribute, serialize
from report_export.core.history import HistoryEvent
from report_export.core.models.common import JobStatus, format_timestamp, now_utc
from report_export.core.models.reexports import ReexportStatus

ACTIVE_REEXPORT = "#status IN (:pending, :running)"
_ACTIVE_REEXPORT_NAMES = {"#status": "status"}
_ACTIVE_REEXPORT_VALUES = {":pending": ReexportStatus.PENDING.value, ":running": ReexportStatus.RUNNING.value}


@dataclass(frozen=True, slots=True)
class ConditionalUpdate:
    """One conditional UpdateItem, in the form DynamoDB takes it."""

    key: dict[str, Any]
    update_expression: str
    condition_expression: str
    names: dict[str, str]
    values: dict[str, Any]

    def as_request(self, table_name: str) -> dict[str, Any]:
        request = {
            "TableName": table_name,
            "Key": self.key,
            "UpdateExpression": self.update_expression,
            "ConditionExpression": self.condition_expression,
            "ExpressionAttributeNames": self.names,
        }
        # DynamoDB refuses an empty map (an update that only removes attributes has no values).
        return {**request, "ExpressionAttributeValues": self.values} if self.values else request

    def as_transact_item(self, table_name: str) -> dict[str, Any]:
        return {"Update": self.as_request(table_name)}


def conditional_update(
    key: dict[str, Any],
    values: dict[str, Any],
    *,
    condition: str,
    condition_names: dict[str, str],
    condition_values: dict[str, Any],
    remove: tuple[str, ...] = (),
    increments: tuple[str, ...] = (),
    bump_version: bool = True,
) -> ConditionalUpdate:
    names = {f"#a{index}": name for index, name in enumerate(values)}
    placeholders: dict[str, Any] = {f":v{index}": value for index, value in enumerate(values.values())}
    assignments = [f"#a{index} = :v{index}" for index in range(len(values))]
    counters = (*increments, "version") if bump_version else increments
    for index, name in enumerate(counters):
        names[f"#i{index}"] = name
        assignments.append(f"#i{index} = if_not_exists(#i{index}, :zero) + :one")
    clauses = []
    if assignments:
        clauses.append("SET " + ", ".join(assignments))
    if remove:
        names.update({f"#r{index}": name for index, name in enumerate(remove)})
        clauses.append("REMOVE " + ", ".join(f"#r{index}" for index in range(len(remove))))
    counter_values = {":zero": 0, ":one": 1} if counters else {}
    return ConditionalUpdate(
        key=key,
        update_expression=" ".join(clauses),
        condition_expression=condition,
        names={**names, **condition_names},
        values=serialize({**placeholders, **counter_values, **condition_values}),
    )


def job_update(
    tenant_id: str,
    job_id: str,
    changes: dict[str, Any],
    *,
    condition: str,
    condition_names: dict[str, str],
    condition_values: dict[str, Any],
    remove: tuple[str, ...] = (),
    increments: tuple[str, ...] = (),
) -> ConditionalUpdate:
    values = _with_status_index(dict(changes), lambda status: keys.status_pk(tenant_id, JobStatus(status)))
    values, remove = _with_unfinished_index(tenant_id, job_id, values, remove)
    return conditional_update(
        keys.job_key(tenant_id, job_id),
        values,
        condition=condition,
        condition_names=condition_names,
        condition_values=condition_values,
        remove=remove,
        increments=increments,
    )


def _with_unfinished_index(
    tenant_id: str, job_id: str, values: dict[str, Any], remove: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Keeps the job's place in the sparse index of unfinished work, in the same write: a running job is due
    when its lease ends, a queued one from its last change; a job that succeeds or fails is due to be
    announced from when it ended (until its notification is recorded), a cancelled one leaves the index."""
    status = JobStatus(values["status"]) if "status" in values else None
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        values["GSI3PK"] = keys.UNANNOUNCED_PK
        ended_at = values.get("updated_at") or format_timestamp(now_utc())
        values["GSI3SK"] = keys.unfinished_sk(ended_at, tenant_id, job_id)
        return values, remove
    if status is not None and status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        return values, (*remove, *keys.UNFINISHED_ATTRIBUTES)
    if status is not None:
        values["GSI3PK"] = keys.unfinished_pk(status)
    due = values.get("lease_expires_at") or (values.get("updated_at") if status is JobStatus.QUEUED else None)
    if due:
        values["GSI3SK"] = keys.unfinished_sk(due, tenant_id, job_id)
    return values, remove


def versioned_update(
    current: StoredJob, *, expected_status: JobStatus, changes: dict[str, Any], remove: tuple[str, ...] = ()
) -> ConditionalUpdate:
    """Applies only while the job has the version and status it was read with."""
    return job_update(
        current.job.tenant_id,
        current.job.id,
        changes,
        condition="#version = :expected_version AND #status = :expected_status",
        condition_names={"#status": "status", "#version": "version"},
        condition_values={":expected_version": current.version, ":expected_status": expected_status.value},
        remove=remove,
    )


def attempt_update(current: StoredJob, changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> ConditionalUpdate:
    """Applies only while the job is running under the attempt that read it."""
    return job_update(
        current.job.tenant_id,
        current.job.id,
        changes,
        condition="#status = :running AND #attempt = :attempt",
        condition_names={"#status": "status", "#attempt": "attempt"},
        condition_values={":running": JobStatus.RUNNING.value, ":attempt": current.attempt},
        remove=remove,
    )


def expired_lease_update(
    current: StoredJob, changes: dict[str, Any], *, now: str, remove: tuple[str, ...] = ()
) -> ConditionalUpdate:
    """Applies only while the job runs under the attempt read and its lease has run out: a worker that
    is still alive keeps its job by extending the lease."""
    return job_update(
        current.job.tenant_id,
        current.job.id,
        changes,
        condition="#status = :running AND #attempt = :attempt AND #lease < :now",
        condition_names={"#status": "status", "#attempt": "attempt", "#lease": "lease_expires_at"},
        condition_values={":running": JobStatus.RUNNING.value, ":attempt": current.attempt, ":now": now},
        remove=remove,
    )


def running_update(current: StoredJob, changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> ConditionalUpdate:
    """Applies while the job runs, whichever attempt and version: every progress checkpoint bumps the
    version, so a versioned write against a running job would keep losing."""
    return job_update(
        current.job.tenant_id,
        current.job.id,
        changes,
        condition="#status = :running",
        condition_names={"#status": "status"},
        condition_values={":running": JobStatus.RUNNING.value},
        remove=remove,
    )


def notified_update(key: dict[str, Any], now: str, *, while_status: str | None = None) -> ConditionalUpdate:
    """notification_sent_at, on an item that exists (and, given while_status, only while it has that status).
    Marking a job notified leaves its version: the job's state did not change, only what was said of it;
    it also takes the job out of the index of those still to be announced."""
    if while_status is None:
        return conditional_update(
            key,
            {"notification_sent_at": now},
            condition="attribute_exists(PK)",
            condition_names={},
            condition_values={},
            remove=keys.UNFINISHED_ATTRIBUTES,
            bump_version=False,
        )
    return conditional_update(
        key,
        {"notification_sent_at": now},
        condition="#status = :announced",
        condition_names={"#status": "status"},
        condition_values={":announced": while_status},
    )


def reexport_update(
    tenant_id: str,
    reexport_id: str,
    changes: dict[str, Any],
    *,
    condition: str,
    condition_names: dict[str, str],
    condition_values: dict[str, Any],
    remove: tuple[str, ...] = (),
    bump_version: bool = True,
) -> ConditionalUpdate:
    values = _with_status_index(
        dict(reexport_attribute(name, value) for name, value in changes.items()),
        lambda status: keys.reexport_status_pk(tenant_id, ReexportStatus(status)),
    )
    return conditional_update(
        keys.reexport_key(tenant_id, reexport_id),
        values,
        condition=condition,
        condition_names=condition_names,
        condition_values=condition_values,
        remove=remove,
        bump_version=bump_version,
    )


def end_reexport_update(
    tenant_id: str, reexport_id: str, changes: dict[str, Any], *, expected_version: int | None = None
) -> ConditionalUpdate:
    """Ends a re-export only while it is still pending or running (and, if given, at the version read)."""
    condition, values = ACTIVE_REEXPORT, dict(_ACTIVE_REEXPORT_VALUES)
    names = dict(_ACTIVE_REEXPORT_NAMES)
    if expected_version is not None:
        condition = f"#version = :expected_version AND {ACTIVE_REEXPORT}"
        names["#version"] = "version"
        values[":expected_version"] = expected_version
    return reexport_update(
        tenant_id, reexport_id, changes, condition=condition, condition_names=names, condition_values=values
    )


def claim_original_update(tenant_id: str, report_id: str, reexport_id: str) -> ConditionalUpdate:
    """Marks the original report as being re-exported: the one write that makes concurrent requests
    for the same report give one re-export. Fails unless the report succeeded and has none active."""
    return job_update(
        tenant_id,
        report_id,
        {"active_reexport_id": reexport_id},
        condition="#status = :succeeded AND attribute_not_exists(#active)",
        condition_names={"#status": "status", "#active": "active_reexport_id"},
        condition_values={":succeeded": JobStatus.SUCCEEDED.value},
    )


def release_original_update(tenant_id: str, report_id: str, reexport_id: str) -> ConditionalUpdate:
    """The original report may be re-exported again: its active re-export (this one) has ended."""
    return job_update(
        tenant_id,
        report_id,
        {},
        condition="attribute_exists(PK) AND (attribute_not_exists(#active) OR #active = :reexport)",
        condition_names={"#active": "active_reexport_id"},
        condition_values={":reexport": reexport_id},
        remove=("active_reexport_id",),
    )


def job_status_check(table_name: str, current: StoredJob) -> dict[str, Any]:
    """A transaction item that changes nothing and holds only while the job keeps the status it was read in."""
    return {
        "ConditionCheck": {
            "TableName": table_name,
            "Key": keys.job_key(current.job.tenant_id, current.job.id),
            "ConditionExpression": "#status = :read",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": serialize({":read": current.job.status.value}),
        }
    }


def _with_status_index(values: dict[str, Any], status_pk: Callable[[str], str]) -> dict[str, Any]:
    """A status change also moves the item to its new ByStatus partition, in the same write."""
    if "status" in values:
        values["status"] = str(values["status"])
        values["GSI1PK"] = status_pk(values["status"])
    return values


def put_new(table_name: str, item: dict[str, Any]) -> dict[str, Any]:
    """A transaction item that writes a new item, refused if one with its key exists."""
    return {
        "Put": {"TableName": table_name, "Item": serialize(item), "ConditionExpression": "attribute_not_exists(PK)"}
    }


def history_put(table_name: str, tenant_id: str, event: HistoryEvent) -> dict[str, Any]:
    return put_new(table_name, history_item(tenant_id, event))


# The tenant's active jobs are a string set of job ids on one item rather than a counter: a job enters
# it in the transaction that creates the job and leaves it in the one that ends it, and an id left
# behind by any other write can be recognised (its job has ended) and removed, where a counter that
# drifted could never be corrected and would lock a tenant out.
ACTIVE_JOBS_ATTRIBUTE = "active_jobs"


def active_job_enter(table_name: str, tenant_id: str, job_id: str, *, most: int) -> dict[str, Any]:
    """A transaction item that counts the new job among the tenant's active ones, refused when it has `most`."""
    return {
        "Update": {
            "TableName": table_name,
            "Key": keys.active_jobs_key(tenant_id),
            "UpdateExpression": "ADD #active :job",
            "ConditionExpression": "attribute_not_exists(#active) OR size(#active) < :most",
            "ExpressionAttributeNames": {"#active": ACTIVE_JOBS_ATTRIBUTE},
            "ExpressionAttributeValues": {":job": {"SS": [job_id]}, ":most": {"N": str(most)}},
        }
    }


def active_jobs_leave(tenant_id: str, job_ids: list[str]) -> dict[str, Any]:
    """The UpdateItem request (without its table) that removes ended jobs from the tenant's active ones;
    unconditional, so applying it twice, or for a job that never entered, changes nothing."""
    return {
        "Key": keys.active_jobs_key(tenant_id),
        "UpdateExpression": "DELETE #active :jobs",
        "ExpressionAttributeNames": {"#active": ACTIVE_JOBS_ATTRIBUTE},
        "ExpressionAttributeValues": {":jobs": {"SS": job_ids}},
    }


def active_job_leave(table_name: str, tenant_id: str, job_id: str) -> dict[str, Any]:
    """A transaction item that removes an ending job from the tenant's active ones."""
    return {"Update": {"TableName": table_name, **active_jobs_leave(tenant_id, [job_id])}}


def announce_again_update(tenant_id: str, job_id: str, *, due_before: str, now: str) -> ConditionalUpdate:
    """A sweeper takes a job's re-announcement: it is due again from now, and counted. Only while it is still
    due and not announced, so that two sweepers do not both announce it."""
    return conditional_update(
        keys.job_key(tenant_id, job_id),
        {"GSI3SK": keys.unfinished_sk(now, tenant_id, job_id)},
        condition="GSI3PK = :unannounced AND GSI3SK < :due AND attribute_not_exists(notification_sent_at)",
        condition_names={},
        condition_values={":unannounced": keys.UNANNOUNCED_PK, ":due": due_before},
        increments=("announce_attempts",),
        bump_version=False,
    )


def unannounced_done_update(tenant_id: str, job_id: str) -> ConditionalUpdate:
    """The job leaves the index of those to announce (announced meanwhile, or given up on)."""
    return conditional_update(
        keys.job_key(tenant_id, job_id),
        {},
        condition="attribute_exists(PK)",
        condition_names={},
        condition_values={},
        remove=keys.UNFINISHED_ATTRIBUTES,
        bump_version=False,
    )
