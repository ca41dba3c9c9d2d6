"""DynamoDB access for jobs, idempotency keys, re-exports and history: the only module that builds
DynamoDB requests.

One table, items keyed by tenant so that every access pattern is a Query or a GetItem:
  job             PK=TENANT#{tenant}  SK=JOB#{job_id}             (UUIDv7 ids sort by creation time)
  idempotency key PK=TENANT#{tenant}  SK=IDEMPOTENCY#{key}        (claimed in the job's transaction)
  re-export       PK=TENANT#{tenant}  SK=REEXPORT#{reexport_id}   (UUIDv7)
  history entry   PK=TENANT#{tenant}  SK=HISTORY#{job_id}#{entry_id}  (UUIDv7: a report's entries in time order)
Indexes for the list filters, so a filtered page is read from an index instead of filtered away:
  ByStatus  GSI1PK=TENANT#{tenant}#STATUS#{status}            GSI1SK=JOB#{job_id}
            GSI1PK=TENANT#{tenant}#REEXPORT_STATUS#{status}   GSI1SK=REEXPORT#{reexport_id}
  ByType    GSI2PK=TENANT#{tenant}#TYPE#{job_type}            GSI2SK=JOB#{job_id}
            GSI2PK=TENANT#{tenant}#REEXPORTS_OF#{job_id}      GSI2SK=REEXPORT#{reexport_id}
A tenant id never holds "#", so the prefixes cannot collide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel

from report_export.core.history import HistoryEvent, HistoryEventType, new_event
from report_export.core.models import JobStatus, JobType, canonical_json
from report_export.jobs.models import Job
from report_export.reexports.models import Reexport, ReexportStatus

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
    """The item changed since it was read (version or status no longer as expected); for a
    transaction, one of its conditions failed or it collided with another transaction."""


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
class StoredReexport:
    record: Reexport
    # The original job's manifest at the time of the request: what the new file is compared with.
    original_manifest: dict[str, Any] | None = None

    @property
    def version(self) -> int:
        return self.record.version


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

    def as_transact_item(self, table_name: str) -> dict[str, Any]:
        """The same update as one item of a TransactWriteItems request."""
        return {
            "Update": {
                "TableName": table_name,
                "Key": self.key,
                "UpdateExpression": self.update_expression,
                "ConditionExpression": self.condition_expression,
                "ExpressionAttributeNames": self.names,
                "ExpressionAttributeValues": self.values,
            }
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
    return _conditional_update(
        job_key(tenant_id, job_id),
        values,
        condition=condition,
        condition_names=condition_names,
        condition_values=condition_values,
        remove=remove,
        increments=increments,
    )


def _conditional_update(
    key: dict[str, Any],
    values: dict[str, Any],
    *,
    condition: str,
    condition_names: dict[str, str],
    condition_values: dict[str, Any],
    remove: tuple[str, ...] = (),
    increments: tuple[str, ...] = (),
) -> JobUpdate:
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
        key=key,
        update_expression=expression,
        condition_expression=condition,
        names={**names, **condition_names},
        values=_serialize({**placeholders, ":zero": 0, ":one": 1, **condition_values}),
    )


def versioned_update(current: StoredJob, *, expected_status: JobStatus, changes: dict[str, Any]) -> JobUpdate:
    """An update that applies only while the job has the version and status it was read with."""
    return job_update(
        current.job.tenant_id,
        current.job.id,
        changes,
        condition="#version = :expected_version AND #status = :expected_status",
        condition_names={"#status": "status", "#version": "version"},
        condition_values={":expected_version": current.version, ":expected_status": expected_status.value},
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


# --- re-exports and history: builders shared by the API and by the generator, which hands them to the
# state machine as one TransactWriteItems request (DynamoDB-typed, ready to send) ---------------------------

# Stored as text: parameters and row keys may hold floats, which DynamoDB numbers would not round-trip.
_REEXPORT_JSON_FIELDS = (
    "original_parameters",
    "effective_parameters",
    "overrides",
    "original_file",
    "new_file",
    "comparison",
    "changed_inputs",
)
# An internal service's announcement in progress (who claimed it, and when): never part of the record.
ANNOUNCEMENT_CLAIM = "announcement_claim"
_ACTIVE_REEXPORT = "#status IN (:pending, :running)"
_ACTIVE_REEXPORT_NAMES = {"#status": "status"}
_ACTIVE_REEXPORT_VALUES = {":pending": ReexportStatus.PENDING.value, ":running": ReexportStatus.RUNNING.value}


def reexport_key(tenant_id: str, reexport_id: str) -> dict[str, Any]:
    return _serialize({"PK": _tenant_pk(tenant_id), "SK": _reexport_sk(reexport_id)})


def reexport_update(
    tenant_id: str,
    reexport_id: str,
    changes: dict[str, Any],
    *,
    condition: str,
    condition_names: dict[str, str],
    condition_values: dict[str, Any],
    remove: tuple[str, ...] = (),
) -> JobUpdate:
    """A conditional update of a re-export record that bumps its version; a status change moves it
    between ByStatus partitions, and models or dicts in the lineage fields are stored as JSON text."""
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name in _REEXPORT_JSON_FIELDS:
            plain = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            values[f"{name}_json"] = canonical_json(plain)
        else:
            values[name] = value
    if "status" in values:
        status = ReexportStatus(values["status"])
        values["status"] = status.value
        values["GSI1PK"] = _reexport_status_pk(tenant_id, status)
    return _conditional_update(
        reexport_key(tenant_id, reexport_id),
        values,
        condition=condition,
        condition_names=condition_names,
        condition_values=condition_values,
        remove=remove,
    )


def finish_reexport_update(tenant_id: str, reexport_id: str, changes: dict[str, Any]) -> JobUpdate:
    """Ends a re-export (succeeded, failed, cancelled) only while it is still pending or running."""
    return reexport_update(
        tenant_id,
        reexport_id,
        changes,
        condition=_ACTIVE_REEXPORT,
        condition_names=_ACTIVE_REEXPORT_NAMES,
        condition_values=_ACTIVE_REEXPORT_VALUES,
    )


def claim_original_update(tenant_id: str, report_id: str, reexport_id: str) -> JobUpdate:
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


def release_original_update(tenant_id: str, report_id: str, reexport_id: str) -> JobUpdate:
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


def history_put(table_name: str, tenant_id: str, event: HistoryEvent) -> dict[str, Any]:
    return _put(table_name, _history_item(tenant_id, event))


def reexport_end_items(
    table_name: str, record: Reexport, changes: dict[str, Any], event: HistoryEvent
) -> list[dict[str, Any]]:
    """The transaction items that end a re-export: the record (while still active), the original
    report released, and the history entry on the original."""
    return [
        finish_reexport_update(record.tenant_id, record.id, changes).as_transact_item(table_name),
        release_original_update(record.tenant_id, record.report_id, record.id).as_transact_item(table_name),
        history_put(table_name, record.tenant_id, event),
    ]


def _put(table_name: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "Put": {"TableName": table_name, "Item": _serialize(item), "ConditionExpression": "attribute_not_exists(PK)"}
    }


def _reexport_sk(reexport_id: str) -> str:
    return f"REEXPORT#{reexport_id}"


def _reexport_status_pk(tenant_id: str, status: ReexportStatus) -> str:
    return f"TENANT#{tenant_id}#REEXPORT_STATUS#{status.value}"


def _reexports_of_pk(tenant_id: str, report_id: str) -> str:
    return f"TENANT#{tenant_id}#REEXPORTS_OF#{report_id}"


def _history_prefix(job_id: str) -> str:
    return f"HISTORY#{job_id}#"


def _reexport_item(record: Reexport, *, original_manifest: dict[str, Any] | None) -> dict[str, Any]:
    attributes = record.model_dump(
        mode="json", exclude_none=True, exclude={"version", "download_url", "download_expires_at"}
    )
    for name in _REEXPORT_JSON_FIELDS:
        if name in attributes:
            attributes[f"{name}_json"] = canonical_json(attributes.pop(name))
    if original_manifest is not None:
        attributes["original_manifest_json"] = canonical_json(original_manifest)
    return {
        **attributes,
        "PK": _tenant_pk(record.tenant_id),
        "SK": _reexport_sk(record.id),
        "GSI1PK": _reexport_status_pk(record.tenant_id, record.status),
        "GSI1SK": _reexport_sk(record.id),
        "GSI2PK": _reexports_of_pk(record.tenant_id, record.report_id),
        "GSI2SK": _reexport_sk(record.id),
        "version": record.version,
    }


def _stored_reexport(raw_item: dict[str, Any]) -> StoredReexport:
    item = _deserialize(raw_item)
    attributes: dict[str, Any] = {
        name: value
        for name, value in item.items()
        if name not in _KEY_ATTRIBUTES and name != ANNOUNCEMENT_CLAIM and not name.endswith("_json")
    }
    for name in _REEXPORT_JSON_FIELDS:
        if f"{name}_json" in item:
            attributes[name] = json.loads(item[f"{name}_json"])
    for name, value in attributes.items():
        if isinstance(value, Decimal):
            attributes[name] = int(value)
    manifest_json = item.get("original_manifest_json")
    return StoredReexport(
        record=Reexport.model_validate(attributes),
        original_manifest=json.loads(manifest_json) if manifest_json else None,
    )


def _history_item(tenant_id: str, event: HistoryEvent) -> dict[str, Any]:
    attributes = event.model_dump(mode="json")
    details = attributes.pop("details")
    return {
        **attributes,
        "details_json": canonical_json(details),
        "PK": _tenant_pk(tenant_id),
        "SK": _history_prefix(event.job_id) + event.id,
    }


def _history_event(raw_item: dict[str, Any]) -> HistoryEvent:
    item = _deserialize(raw_item)
    attributes = {name: value for name, value in item.items() if name not in ("PK", "SK", "details_json")}
    attributes["details"] = json.loads(item.get("details_json") or "{}")
    return HistoryEvent.model_validate(attributes)


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
        """Write a new job and its history entry "created"; with an idempotency key, claim the key in
        the same transaction.

        Raises IdempotencyKeyTaken when the key is already claimed (by any job, finished or not).
        """
        job_put = _put(self._table, _job_item(job, version=1, params_hash=params_hash))
        created = new_event(job.id, HistoryEventType.CREATED, actor=job.requested_by, at=job.created_at)
        items = [job_put, history_put(self._table, job.tenant_id, created)]
        if job.idempotency_key is None:
            self._client.transact_write_items(TransactItems=items)
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
            self._client.transact_write_items(TransactItems=[*items, key_put])
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
        return self._apply(versioned_update(current, expected_status=expected_status, changes=changes))

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
        return _stored_job(self._update_item(update))

    def _update_item(self, update: JobUpdate) -> dict[str, Any]:
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
        return response["Attributes"]

    def _transact(self, items: list[dict[str, Any]]) -> None:
        """All or nothing; StaleWrite when a condition failed or another transaction got in the way."""
        try:
            self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("TransactionCanceledException", "TransactionConflictException"):
                raise StaleWrite("transaction cancelled") from None
            raise

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
        found, more = self._read_page(query, start_key, limit=limit, filtered=bool(filter_values))
        return [_stored_job(item) for item in found], more

    def _read_page(
        self, query: dict[str, Any], start_key: dict[str, Any] | None, *, limit: int, filtered: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` items and whether more match after them; never short while matches remain."""
        # One more than asked for tells whether a next page exists without an empty last page.
        wanted = limit + 1
        found: list[dict[str, Any]] = []
        while len(found) < wanted:
            page_size = _FILTERED_QUERY_PAGE if filtered else wanted - len(found)
            request = {**query, "Limit": page_size}
            if start_key:
                request["ExclusiveStartKey"] = _serialize(start_key)
            response = self._client.query(**request)
            found.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            start_key = _deserialize(response["LastEvaluatedKey"])
        return found[:limit], len(found) > limit

    # --- re-exports ---------------------------------------------------------------------------------------

    def create_reexport(
        self,
        record: Reexport,
        job: Job,
        *,
        params_hash: str,
        original_manifest: dict[str, Any] | None,
        requested: HistoryEvent,
    ) -> None:
        """One transaction: the original report claimed for this re-export (only if it succeeded and
        has none active), the record, the job that regenerates the report, the history entries of both.

        Raises StaleWrite when the transaction is cancelled: the caller reads the original to learn why.
        """
        created = new_event(
            job.id,
            HistoryEventType.CREATED,
            actor=job.requested_by,
            at=job.created_at,
            details={"reexport_id": record.id, "reexport_of": record.report_id},
        )
        self._transact(
            [
                claim_original_update(record.tenant_id, record.report_id, record.id).as_transact_item(self._table),
                _put(self._table, _reexport_item(record, original_manifest=original_manifest)),
                _put(self._table, _job_item(job, version=1, params_hash=params_hash)),
                history_put(self._table, record.tenant_id, requested),
                history_put(self._table, job.tenant_id, created),
            ]
        )

    def get_reexport(self, tenant_id: str, reexport_id: str, *, consistent: bool = False) -> StoredReexport | None:
        response = self._client.get_item(
            TableName=self._table, Key=reexport_key(tenant_id, reexport_id), ConsistentRead=consistent
        )
        return _stored_reexport(response["Item"]) if "Item" in response else None

    def update_reexport(self, update: JobUpdate) -> StoredReexport:
        """Apply one conditional update to a re-export record (StaleWrite when its condition fails)."""
        return _stored_reexport(self._update_item(update))

    def mark_reexport_running(self, tenant_id: str, reexport_id: str, *, now: str) -> bool:
        """pending → running once the generator has claimed the job; False when it was not pending."""
        try:
            self.update_reexport(
                reexport_update(
                    tenant_id,
                    reexport_id,
                    {"status": ReexportStatus.RUNNING, "updated_at": now},
                    condition="#status = :pending",
                    condition_names={"#status": "status"},
                    condition_values={":pending": ReexportStatus.PENDING.value},
                )
            )
        except StaleWrite:
            return False
        return True

    def end_reexport_with_job(
        self, job_change: JobUpdate, record: Reexport, changes: dict[str, Any], event: HistoryEvent
    ) -> None:
        """A job change and the end of its re-export in one transaction (StaleWrite if either moved)."""
        self._transact(
            [job_change.as_transact_item(self._table), *reexport_end_items(self._table, record, changes, event)]
        )

    def release_original(self, tenant_id: str, report_id: str, reexport_id: str) -> None:
        """The original names a re-export that has ended: it may be re-exported again (no-op otherwise)."""
        try:
            self._update_item(release_original_update(tenant_id, report_id, reexport_id))
        except StaleWrite:
            pass

    def end_orphaned_reexport(
        self, job: StoredJob, record: StoredReexport, changes: dict[str, Any], event: HistoryEvent
    ) -> None:
        """Repair: a re-export still active although its job has finished ends as the job did, and the
        original is released, in one transaction conditioned on both (the record at the version read, the
        job still in the finished status read). StaleWrite when either moved."""
        current = record.record
        self._transact(
            [
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": job_key(job.job.tenant_id, job.job.id),
                        "ConditionExpression": "#status = :finished",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": _serialize({":finished": job.job.status.value}),
                    }
                },
                reexport_update(
                    current.tenant_id,
                    current.id,
                    changes,
                    condition=f"#version = :expected_version AND {_ACTIVE_REEXPORT}",
                    condition_names={**_ACTIVE_REEXPORT_NAMES, "#version": "version"},
                    condition_values={**_ACTIVE_REEXPORT_VALUES, ":expected_version": record.version},
                ).as_transact_item(self._table),
                release_original_update(current.tenant_id, current.report_id, current.id).as_transact_item(self._table),
                history_put(self._table, current.tenant_id, event),
            ]
        )

    def claim_reexport_announcement(
        self, tenant_id: str, reexport_id: str, *, expected_version: int, marker: str, stale_before: str
    ) -> None:
        """Take the right to announce a finished re-export: only at the version read, not yet announced, and
        not being announced by another request (a claim older than stale_before was abandoned). The version
        is not bumped: the claim is internal, and released if the announcement fails. StaleWrite otherwise."""
        self._update_item(
            JobUpdate(
                key=reexport_key(tenant_id, reexport_id),
                update_expression="SET #claim = :marker",
                condition_expression=(
                    "#version = :expected_version AND attribute_not_exists(#sent) AND #status IN (:succeeded, :failed)"
                    " AND (attribute_not_exists(#claim) OR #claim < :stale_before)"
                ),
                names={
                    "#claim": ANNOUNCEMENT_CLAIM,
                    "#version": "version",
                    "#sent": "notification_sent_at",
                    "#status": "status",
                },
                values=_serialize(
                    {
                        ":marker": marker,
                        ":expected_version": expected_version,
                        ":succeeded": ReexportStatus.SUCCEEDED.value,
                        ":failed": ReexportStatus.FAILED.value,
                        ":stale_before": stale_before,
                    }
                ),
            )
        )

    def release_reexport_announcement(self, tenant_id: str, reexport_id: str, *, marker: str) -> None:
        """Give the claim back (the announcement failed), so that a retry can take it; no-op if it is not ours."""
        try:
            self._update_item(
                JobUpdate(
                    key=reexport_key(tenant_id, reexport_id),
                    update_expression="REMOVE #claim",
                    condition_expression="#claim = :marker",
                    names={"#claim": ANNOUNCEMENT_CLAIM},
                    values=_serialize({":marker": marker}),
                )
            )
        except StaleWrite:
            pass

    def store_reexport_result(
        self,
        current: StoredReexport,
        changes: dict[str, Any],
        event: HistoryEvent,
        *,
        job_change: JobUpdate | None,
    ) -> None:
        """An internal service's result: the record (at the version it was read, still active) ends
        succeeded, the original is released, the history written and the job superseded, together."""
        record = current.record
        items = [
            reexport_update(
                record.tenant_id,
                record.id,
                changes,
                condition=f"#version = :expected_version AND {_ACTIVE_REEXPORT}",
                condition_names={**_ACTIVE_REEXPORT_NAMES, "#version": "version"},
                condition_values={**_ACTIVE_REEXPORT_VALUES, ":expected_version": current.version},
            ).as_transact_item(self._table),
            release_original_update(record.tenant_id, record.report_id, record.id).as_transact_item(self._table),
            history_put(self._table, record.tenant_id, event),
        ]
        if job_change is not None:
            items.append(job_change.as_transact_item(self._table))
        self._transact(items)

    def query_reexports(
        self,
        tenant_id: str,
        *,
        status: ReexportStatus | None,
        report_id: str | None,
        limit: int,
        after_reexport_id: str | None,
    ) -> tuple[list[StoredReexport], bool]:
        """Newest first, like jobs: a report's re-exports from the ByType index (status filtered,
        a report has few), a status from the ByStatus index, else the tenant's REEXPORT# items."""
        pk = _tenant_pk(tenant_id)
        query: dict[str, Any] = {"TableName": self._table, "ScanIndexForward": False}
        filter_values: dict[str, Any] = {}
        start_key: dict[str, Any] = {}
        if report_id is not None:
            query["IndexName"] = BY_TYPE_INDEX
            query["KeyConditionExpression"] = "GSI2PK = :pk"
            key_values: dict[str, Any] = {":pk": _reexports_of_pk(tenant_id, report_id)}
            index_key = {"GSI2PK": key_values[":pk"]}
            if status is not None:
                query["FilterExpression"] = "#status = :status"
                query["ExpressionAttributeNames"] = {"#status": "status"}
                filter_values = {":status": status.value}
            sort_name = "GSI2SK"
        elif status is not None:
            query["IndexName"] = BY_STATUS_INDEX
            query["KeyConditionExpression"] = "GSI1PK = :pk"
            key_values = {":pk": _reexport_status_pk(tenant_id, status)}
            index_key = {"GSI1PK": key_values[":pk"]}
            sort_name = "GSI1SK"
        else:
            query["KeyConditionExpression"] = "PK = :pk AND begins_with(SK, :prefix)"
            key_values = {":pk": pk, ":prefix": "REEXPORT#"}
            index_key = {}
            sort_name = "SK"
        if after_reexport_id:
            start_key = {
                **index_key,
                sort_name: _reexport_sk(after_reexport_id),
                "PK": pk,
                "SK": _reexport_sk(after_reexport_id),
            }
        query["ExpressionAttributeValues"] = _serialize({**key_values, **filter_values})
        found, more = self._read_page(query, start_key or None, limit=limit, filtered=bool(filter_values))
        return [_stored_reexport(item) for item in found], more

    # --- history -------------------------------------------------------------------------------------------

    def put_history(self, tenant_id: str, event: HistoryEvent) -> None:
        self._client.put_item(**history_put(self._table, tenant_id, event)["Put"])

    def query_history(
        self, tenant_id: str, job_id: str, *, limit: int, after_event_id: str | None
    ) -> tuple[list[HistoryEvent], bool]:
        """A report's history, oldest first."""
        query = {
            "TableName": self._table,
            "ScanIndexForward": True,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": _serialize({":pk": _tenant_pk(tenant_id), ":prefix": _history_prefix(job_id)}),
        }
        start_key = None
        if after_event_id:
            start_key = {"PK": _tenant_pk(tenant_id), "SK": _history_prefix(job_id) + after_event_id}
        found, more = self._read_page(query, start_key, limit=limit, filtered=False)
        return [_history_event(item) for item in found], more
