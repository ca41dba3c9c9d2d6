"""DynamoDB access for jobs and idempotency keys: the only module that builds DynamoDB requests.

One table, items keyed by tenant so that every access pattern is a Query or a GetItem:
  job             PK=TENANT#{tenant}  SK=JOB#{job_id}           (UUIDv7 ids sort by creation time)
  idempotency key PK=TENANT#{tenant}  SK=IDEMPOTENCY#{key}      (claimed in the job's transaction)
Indexes for the list filters, so a filtered page is read from an index instead of filtered away:
  ByStatus  GSI1PK=TENANT#{tenant}#STATUS#{status}  GSI1SK=JOB#{job_id}
  ByType    GSI2PK=TENANT#{tenant}#TYPE#{job_type}  GSI2SK=JOB#{job_id}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from report_export.models import Job, JobStatus, JobType, canonical_json

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

BY_STATUS_INDEX = "ByStatus"
BY_TYPE_INDEX = "ByType"
_KEY_ATTRIBUTES = ("PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")
_INTERNAL_ATTRIBUTES = (
    *_KEY_ATTRIBUTES,
    "version",
    "params_hash",
    "filters_json",
    "manifest_json",
    "ttl",
    "attempt",
    "lease_expires_at",
)
# How many items one Query reads when a filter may drop some: enough that a sparse filter
# does not cost a round trip per item, small enough to keep one response well under 1 MB.
_FILTERED_QUERY_PAGE = 200


class StaleWrite(Exception):
    """The item changed since it was read (version or status no longer as expected)."""


class IdempotencyKeyTaken(Exception):
    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__(f"idempotency key already used for job {record.job_id}")
        self.record = record


@dataclass(frozen=True, slots=True)
class StoredJob:
    job: Job
    version: int
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    job_id: str
    params_hash: str


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """One conditional UpdateItem on a job item, in the form DynamoDB (and a state machine task) takes."""

    key: dict[str, Any]
    update_expression: str
    condition_expression: str
    names: dict[str, str]
    values: dict[str, Any]

    def as_task_input(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "update_expression": self.update_expression,
            "condition_expression": self.condition_expression,
            "names": self.names,
            "values": self.values,
        }


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
) -> JobUpdate:
    """Build a conditional update that also bumps the version (optimistic locking).

    A status change moves the job between ByStatus index partitions in the same write.
    """
    values: dict[str, Any] = dict(changes)
    if "status" in values:
        values["status"] = JobStatus(values["status"]).value
        values["GSI1PK"] = _status_pk(tenant_id, JobStatus(values["status"]))
    names = {f"#a{index}": name for index, name in enumerate(values)}
    placeholders: dict[str, Any] = {f":v{index}": value for index, value in enumerate(values.values())}
    assignments = [f"#a{index} = :v{index}" for index in range(len(values))]
    for index, name in enumerate((*increments, "version")):
        names[f"#i{index}"] = name
        assignments.append(f"#i{index} = if_not_exists(#i{index}, :zero) + :one")
    expression = "SET " + ", ".join(assignments)
    if remove:
        names.update({f"#r{index}": name for index, name in enumerate(remove)})
        expression += " REMOVE " + ", ".join(f"#r{index}" for index in range(len(remove)))
    return JobUpdate(
        key=job_key(tenant_id, job_id),
        update_expression=expression,
        condition_expression=condition,
        names={**names, **condition_names},
        values=_serialize({**placeholders, ":zero": 0, ":one": 1, **condition_values}),
    )


def attempt_update(current: StoredJob, changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> JobUpdate:
    """An update that applies only while the job is running under the attempt that read it."""
    return job_update(
        current.job.tenant_id,
        current.job.id,
        changes,
        condition="#status = :running AND #attempt = :attempt",
        condition_names={"#status": "status", "#attempt": "attempt"},
        condition_values={":running": JobStatus.RUNNING.value, ":attempt": current.attempt},
        remove=remove,
    )


def job_key(tenant_id: str, job_id: str) -> dict[str, Any]:
    """The job item's key, typed as DynamoDB takes it."""
    return _serialize({"PK": _tenant_pk(tenant_id), "SK": _job_sk(job_id)})


def _tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


def _job_sk(job_id: str) -> str:
    return f"JOB#{job_id}"


def _status_pk(tenant_id: str, status: JobStatus) -> str:
    return f"TENANT#{tenant_id}#STATUS#{status.value}"


def _type_pk(tenant_id: str, job_type: JobType) -> str:
    return f"TENANT#{tenant_id}#TYPE#{job_type.value}"


def _serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def _deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def _job_item(job: Job, *, version: int, params_hash: str) -> dict[str, Any]:
    attributes = job.model_dump(mode="json", exclude_none=True)
    filters = attributes.pop("filters", None)
    if filters is not None:
        # Stored as text: filter values may be floats, which DynamoDB numbers would not round-trip.
        attributes["filters_json"] = canonical_json(filters)
    return {
        **attributes,
        "PK": _tenant_pk(job.tenant_id),
        "SK": _job_sk(job.id),
        "GSI1PK": _status_pk(job.tenant_id, job.status),
        "GSI1SK": _job_sk(job.id),
        "GSI2PK": _type_pk(job.tenant_id, job.job_type),
        "GSI2SK": _job_sk(job.id),
        "version": version,
        "params_hash": params_hash,
    }


def _stored_job(raw_item: dict[str, Any]) -> StoredJob:
    item = _deserialize(raw_item)
    version = int(item["version"])
    attempt = int(item.get("attempt", 0))
    filters_json = item.get("filters_json")
    manifest_json = item.get("manifest_json")
    attributes = {name: value for name, value in item.items() if name not in _INTERNAL_ATTRIBUTES}
    if filters_json is not None:
        attributes["filters"] = json.loads(filters_json)
    if manifest_json is not None:
        attributes["manifest"] = json.loads(manifest_json)
    for name, value in attributes.items():
        if isinstance(value, Decimal):
            attributes[name] = int(value)  # every number a job item holds is whole
    return StoredJob(job=Job.model_validate(attributes), version=version, attempt=attempt)


def _is_condition_failure(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


class JobStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def ping(self) -> None:
        """One cheap read that proves the table answers and the function may use it."""
        self._client.get_item(TableName=self._table, Key=_serialize({"PK": "HEALTH", "SK": "HEALTH"}))

    def create_job(self, job: Job, *, params_hash: str) -> None:
        """Write a new job; with an idempotency key, claim the key in the same transaction.

        Raises IdempotencyKeyTaken when the key is already claimed (by any job, finished or not).
        """
        job_put = {
            "Put": {
                "TableName": self._table,
                "Item": _serialize(_job_item(job, version=1, params_hash=params_hash)),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        if job.idempotency_key is None:
            self._client.put_item(**job_put["Put"])
            return
        key_put = {
            "Put": {
                "TableName": self._table,
                "Item": _serialize(
                    {
                        "PK": _tenant_pk(job.tenant_id),
                        "SK": f"IDEMPOTENCY#{job.idempotency_key}",
                        "job_id": job.id,
                        "params_hash": params_hash,
                        "created_at": job.model_dump(mode="json")["created_at"],
                    }
                ),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }
        try:
            self._client.transact_write_items(TransactItems=[job_put, key_put])
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            record = self.get_idempotency_record(job.tenant_id, job.idempotency_key)
            if record is None:
                raise  # cancelled for another reason (throttling, a conflicting transaction): let it surface
            raise IdempotencyKeyTaken(record) from None

    def get_idempotency_record(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=_serialize({"PK": _tenant_pk(tenant_id), "SK": f"IDEMPOTENCY#{key}"}),
            ConsistentRead=True,
        )
        if "Item" not in response:
            return None
        item = _deserialize(response["Item"])
        return IdempotencyRecord(job_id=item["job_id"], params_hash=item["params_hash"])

    def get_job(self, tenant_id: str, job_id: str, *, consistent: bool = False) -> StoredJob | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=_serialize({"PK": _tenant_pk(tenant_id), "SK": _job_sk(job_id)}),
            ConsistentRead=consistent,
        )
        return _stored_job(response["Item"]) if "Item" in response else None

    def update_job(
        self,
        current: StoredJob,
        *,
        expected_status: JobStatus,
        changes: dict[str, Any],
    ) -> StoredJob:
        """Apply changes if the job still has the version and status it was read with.

        Raises StaleWrite when another writer got there first.
        """
        return self._apply(
            job_update(
                current.job.tenant_id,
                current.job.id,
                changes,
                condition="#version = :expected_version AND #status = :expected_status",
                condition_names={"#status": "status", "#version": "version"},
                condition_values={":expected_version": current.version, ":expected_status": expected_status.value},
            )
        )

    def claim_job(self, tenant_id: str, job_id: str, *, now: str, lease_until: str) -> StoredJob | None:
        """queued → running for a new attempt; also takes over a running job whose lease ran out
        (its worker died). None when there is nothing to do: cancelled, finished or being worked on."""
        try:
            return self._apply(
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
                    condition="#status = :queued OR (#status = :running AND lease_expires_at < :now)",
                    condition_names={"#status": "status"},
                    condition_values={":queued": "queued", ":running": "running", ":now": now},
                    increments=("attempt",),
                )
            )
        except StaleWrite:
            return None

    def update_attempt(self, current: StoredJob, changes: dict[str, Any], *, remove: tuple[str, ...] = ()) -> StoredJob:
        """Change a running job only while this attempt still owns it (StaleWrite otherwise)."""
        return self._apply(attempt_update(current, changes, remove=remove))

    def _apply(self, update: JobUpdate) -> StoredJob:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=update.key,
                UpdateExpression=update.update_expression,
                ConditionExpression=update.condition_expression,
                ExpressionAttributeNames=update.names,
                ExpressionAttributeValues=update.values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _is_condition_failure(error):
                raise StaleWrite(update.key["SK"]["S"]) from None
            raise
        return _stored_job(response["Attributes"])

    def query_jobs(
        self,
        tenant_id: str,
        *,
        status: JobStatus | None,
        job_type: JobType | None,
        limit: int,
        after_job_id: str | None,
    ) -> tuple[list[StoredJob], bool]:
        """Newest first. Returns up to `limit` jobs and whether more match after them.

        With both filters the status index is read and the type filtered, so the loop keeps
        reading until the page is full or the index is exhausted: a page is never short
        while matches remain.
        """
        pk = _tenant_pk(tenant_id)
        query: dict[str, Any] = {"TableName": self._table, "ScanIndexForward": False}
        start_key: dict[str, Any] | None = None
        filter_values: dict[str, Any] = {}
        if status is not None:
            query["IndexName"] = BY_STATUS_INDEX
            query["KeyConditionExpression"] = "GSI1PK = :pk"
            key_values: dict[str, Any] = {":pk": _status_pk(tenant_id, status)}
            if after_job_id:
                start_key = {"GSI1PK": key_values[":pk"], "GSI1SK": _job_sk(after_job_id)}
            if job_type is not None:
                query["FilterExpression"] = "job_type = :job_type"
                filter_values = {":job_type": job_type.value}
        elif job_type is not None:
            query["IndexName"] = BY_TYPE_INDEX
            query["KeyConditionExpression"] = "GSI2PK = :pk"
            key_values = {":pk": _type_pk(tenant_id, job_type)}
            if after_job_id:
                start_key = {"GSI2PK": key_values[":pk"], "GSI2SK": _job_sk(after_job_id)}
        else:
            query["KeyConditionExpression"] = "PK = :pk AND begins_with(SK, :job_prefix)"
            key_values = {":pk": pk, ":job_prefix": "JOB#"}
        if after_job_id:
            start_key = {**(start_key or {}), "PK": pk, "SK": _job_sk(after_job_id)}
        query["ExpressionAttributeValues"] = _serialize({**key_values, **filter_values})

        # One more than asked for tells whether a next page exists without an empty last page.
        wanted = limit + 1
        found: list[dict[str, Any]] = []
        while len(found) < wanted:
            page_size = _FILTERED_QUERY_PAGE if filter_values else wanted - len(found)
            request = {**query, "Limit": page_size}
            if start_key:
                request["ExclusiveStartKey"] = _serialize(start_key)
            response = self._client.query(**request)
            found.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            start_key = _deserialize(response["LastEvaluatedKey"])
        jobs = [_stored_job(item) for item in found[:limit]]
        return jobs, len(found) > limit
