"""Items and the domain's shapes, both ways: what each entity looks like in the table.

Lists of parameters, filters, manifests and lineage are stored as canonical JSON text: they may
hold floats, which DynamoDB numbers would not round-trip, and a text compares byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from pydantic import BaseModel

from report_export.aws.dynamo import keys
from report_export.core.history import HistoryEvent
from report_export.core.models.common import JobStatus, canonical_json
from report_export.core.models.jobs import Job
from report_export.core.models.reexports import Reexport
from report_export.core.models.schedules import Schedule, ScheduleRun
from report_export.core.models.subscriptions import Subscription, SubscriptionState

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

_JOB_INTERNAL_ATTRIBUTES = (
    *keys.KEY_ATTRIBUTES,
    "version",
    "params_hash",
    "filters_json",
    "manifest_json",
    "ttl",
    "held_ttl",
    "attempt",
    "lease_expires_at",
    "checkpoint",
)
REEXPORT_JSON_FIELDS = (
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


@dataclass(frozen=True, slots=True)
class StoredJob:
    job: Job
    version: int
    attempt: int = 0
    lease_expires_at: str | None = None
    # Where a file that outgrew one invocation stands (generation.continuation), between invocations.
    checkpoint: str | None = None


@dataclass(frozen=True, slots=True)
class StoredReexport:
    record: Reexport
    # The original job's manifest at the time of the request: what the new file is compared with.
    original_manifest: dict[str, Any] | None = None

    @property
    def version(self) -> int:
        return self.record.version


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    schedule: Schedule
    # Set while a change is written to the record but not yet to EventBridge Scheduler (see schedules.sync).
    pending_since: str | None = None
    deleting: bool = False
    # A rate schedule counts its intervals from when its expression was last set.
    expression_set_at: str | None = None

    @property
    def version(self) -> int:
        return self.schedule.version


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    job_id: str
    params_hash: str


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def reexport_attribute(name: str, value: Any) -> tuple[str, Any]:
    """A re-export change as stored: lineage fields (models or dicts) become JSON text."""
    if name in REEXPORT_JSON_FIELDS:
        plain = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        return f"{name}_json", canonical_json(plain)
    return name, value


def job_item(job: Job, *, version: int, params_hash: str) -> dict[str, Any]:
    attributes = job.model_dump(mode="json", exclude_none=True)
    filters = attributes.pop("filters", None)
    if filters is not None:
        attributes["filters_json"] = canonical_json(filters)
    sk = keys.job_sk(job.id)
    indexed = _indexed(
        job.tenant_id,
        sk,
        by_status=keys.status_pk(job.tenant_id, job.status),
        by_type=keys.type_pk(job.tenant_id, job.job_type),
    )
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        indexed["GSI3PK"] = keys.unfinished_pk(job.status)
        indexed["GSI3SK"] = keys.unfinished_sk(attributes["updated_at"], job.tenant_id, job.id)
    return {**attributes, **indexed, "version": version, "params_hash": params_hash}


def stored_job(raw_item: dict[str, Any]) -> StoredJob:
    item = deserialize(raw_item)
    attributes = {name: value for name, value in item.items() if name not in _JOB_INTERNAL_ATTRIBUTES}
    for name in ("filters", "manifest"):
        if item.get(f"{name}_json") is not None:
            attributes[name] = json.loads(item[f"{name}_json"])
    return StoredJob(
        job=Job.model_validate(_whole_numbers(attributes)),
        version=int(item["version"]),
        attempt=int(item.get("attempt", 0)),
        lease_expires_at=item.get("lease_expires_at"),
        checkpoint=item.get("checkpoint"),
    )


def idempotency_item(job: Job, *, params_hash: str) -> dict[str, Any]:
    return {
        "PK": keys.tenant_pk(job.tenant_id),
        "SK": keys.idempotency_sk(job.idempotency_key or ""),
        "job_id": job.id,
        "params_hash": params_hash,
        "created_at": job.model_dump(mode="json")["created_at"],
    }


def idempotency_record(raw_item: dict[str, Any]) -> IdempotencyRecord:
    item = deserialize(raw_item)
    return IdempotencyRecord(job_id=item["job_id"], params_hash=item["params_hash"])


def reexport_item(record: Reexport, *, original_manifest: dict[str, Any] | None) -> dict[str, Any]:
    attributes = dict(
        reexport_attribute(name, value)
        for name, value in record.model_dump(
            mode="json", exclude_none=True, exclude={"version", "download_url", "download_expires_at"}
        ).items()
    )
    if original_manifest is not None:
        attributes["original_manifest_json"] = canonical_json(original_manifest)
    indexed = _indexed(
        record.tenant_id,
        keys.reexport_sk(record.id),
        by_status=keys.reexport_status_pk(record.tenant_id, record.status),
        by_type=keys.reexports_of_pk(record.tenant_id, record.report_id),
    )
    return {**attributes, **indexed, "version": record.version}


def stored_reexport(raw_item: dict[str, Any]) -> StoredReexport:
    item = deserialize(raw_item)
    attributes: dict[str, Any] = {
        name: value
        for name, value in item.items()
        if name not in keys.KEY_ATTRIBUTES and name != ANNOUNCEMENT_CLAIM and not name.endswith("_json")
    }
    for name in REEXPORT_JSON_FIELDS:
        if f"{name}_json" in item:
            attributes[name] = json.loads(item[f"{name}_json"])
    manifest_json = item.get("original_manifest_json")
    return StoredReexport(
        record=Reexport.model_validate(_whole_numbers(attributes)),
        original_manifest=json.loads(manifest_json) if manifest_json else None,
    )


_SCHEDULE_INTERNAL_ATTRIBUTES = (*keys.KEY_ATTRIBUTES, "export_json", "pending_since", "deleting", "expression_set_at")


def schedule_item(stored: StoredSchedule) -> dict[str, Any]:
    schedule = stored.schedule
    attributes = schedule.model_dump(mode="json", exclude_none=True, exclude={"next_firing_at", "last_runs", "export"})
    item: dict[str, Any] = {
        **attributes,
        "export_json": canonical_json(schedule.export.model_dump(mode="json", exclude_none=True)),
        "PK": keys.tenant_pk(schedule.tenant_id),
        "SK": keys.schedule_sk(schedule.id),
    }
    if stored.expression_set_at is not None:
        item["expression_set_at"] = stored.expression_set_at
    if stored.pending_since is not None:
        item["pending_since"] = stored.pending_since
        item["GSI3PK"] = keys.SCHEDULE_SYNC_PK
        item["GSI3SK"] = keys.schedule_sync_sk(stored.pending_since, schedule.tenant_id, schedule.id)
    if stored.deleting:
        item["deleting"] = True
    return item


def stored_schedule(raw_item: dict[str, Any]) -> StoredSchedule:
    item = deserialize(raw_item)
    attributes = {name: value for name, value in item.items() if name not in _SCHEDULE_INTERNAL_ATTRIBUTES}
    attributes["export"] = json.loads(item["export_json"])
    return StoredSchedule(
        schedule=Schedule.model_validate(_whole_numbers(attributes)),
        pending_since=item.get("pending_since"),
        deleting=bool(item.get("deleting", False)),
        expression_set_at=item.get("expression_set_at"),
    )


def schedule_run_item(tenant_id: str, schedule_id: str, run: ScheduleRun, *, ttl: int) -> dict[str, Any]:
    return {
        **run.model_dump(mode="json", exclude_none=True, exclude={"status"}),
        "PK": keys.tenant_pk(tenant_id),
        # Ordered by the period the run covers, whatever order the firings were handled in (retries, re-runs).
        "SK": keys.schedule_run_sk(schedule_id, run.start_date.isoformat() if run.start_date else "", run.job_id),
        "ttl": ttl,
    }


def schedule_run(raw_item: dict[str, Any]) -> ScheduleRun:
    item = deserialize(raw_item)
    return ScheduleRun.model_validate(
        {name: item[name] for name in ("job_id", "scheduled_time", "start_date", "end_date") if name in item}
    )


_CHAIN_ATTRIBUTES = ("chain_seq", "chain_previous", "chain_hash")


@dataclass(frozen=True, slots=True)
class StoredHistoryEntry:
    event: HistoryEvent
    # Its place in the report's chain, once sealed: position (from 1), the hash before it, its own hash.
    seq: int | None = None
    previous: str | None = None
    hash: str | None = None


def history_item(tenant_id: str, event: HistoryEvent) -> dict[str, Any]:
    attributes = event.model_dump(mode="json")
    details = attributes.pop("details")
    return {
        **attributes,
        "details_json": canonical_json(details),
        "PK": keys.tenant_pk(tenant_id),
        "SK": keys.history_prefix(event.job_id) + event.id,
        # Written unsealed, whoever writes it (a transaction of the state machine's included); sealing it
        # into the chain takes it out of the index.
        "GSI3PK": keys.UNSEALED_PK,
        "GSI3SK": keys.unsealed_sk(attributes["at"], tenant_id, event.job_id, event.id),
    }


def history_event(raw_item: dict[str, Any]) -> HistoryEvent:
    return stored_history_entry(raw_item).event


def stored_history_entry(raw_item: dict[str, Any]) -> StoredHistoryEntry:
    item = deserialize(raw_item)
    skipped = ("PK", "SK", "details_json", *keys.UNFINISHED_ATTRIBUTES, *_CHAIN_ATTRIBUTES)
    attributes = {name: value for name, value in item.items() if name not in skipped}
    attributes["details"] = json.loads(item.get("details_json") or "{}")
    event = HistoryEvent.model_validate(attributes)
    if "chain_seq" not in item:
        return StoredHistoryEntry(event)
    return StoredHistoryEntry(event, int(item["chain_seq"]), item["chain_previous"], item["chain_hash"])


@dataclass(frozen=True)
class StoredSubscription:
    subscription: Subscription
    # SNS's ARN for it; None while it is being set up (or when the request that set it up stopped first).
    subscription_arn: str | None


def subscription_item(stored: StoredSubscription) -> dict[str, Any]:
    subscription = stored.subscription
    item: dict[str, Any] = {
        **subscription.model_dump(mode="json", exclude_none=True, exclude={"state"}),
        "PK": keys.tenant_pk(subscription.tenant_id),
        "SK": keys.subscription_sk(subscription.id),
    }
    if stored.subscription_arn is not None:
        item["subscription_arn"] = stored.subscription_arn
    return item


def stored_subscription(raw_item: dict[str, Any]) -> StoredSubscription:
    item = deserialize(raw_item)
    arn = item.get("subscription_arn")
    attributes = {name: value for name, value in item.items() if name not in ("PK", "SK", "subscription_arn")}
    # What SNS says of it is asked when it is shown; until then, all the record knows.
    state = SubscriptionState.PENDING_CONFIRMATION if arn else SubscriptionState.SUBSCRIBING
    return StoredSubscription(Subscription.model_validate({**attributes, "state": state}), arn)


def subscription_endpoint_item(subscription: Subscription, endpoint_digest: str) -> dict[str, Any]:
    key = keys.subscription_endpoint_key(subscription.protocol.value, endpoint_digest)
    return {
        "PK": key["PK"]["S"],
        "SK": key["SK"]["S"],
        "tenant_id": subscription.tenant_id,
        "subscription_id": subscription.id,
    }


def _indexed(tenant_id: str, sk: str, *, by_status: str, by_type: str) -> dict[str, str]:
    """The item's key and its two index keys: the sort key is the same in the table and both indexes."""
    return {
        "PK": keys.tenant_pk(tenant_id),
        "SK": sk,
        "GSI1PK": by_status,
        "GSI1SK": sk,
        "GSI2PK": by_type,
        "GSI2SK": sk,
    }


def _whole_numbers(attributes: dict[str, Any]) -> dict[str, Any]:
    # Every number a job or re-export item holds at the top level is whole.
    return {name: int(value) if isinstance(value, Decimal) else value for name, value in attributes.items()}
