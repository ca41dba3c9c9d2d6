"""The store-and-notify state machine's execution input, and its start.

The input is one typed model: the generator decides everything (DynamoDB-typed transaction items
included), the state machine only applies and routes. Execution names are the job id and attempt,
so a duplicate start of the same hand-over is harmless.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import NAMESPACE_URL, uuid5

from report_export.aws.dynamo import keys
from report_export.aws.dynamo.updates import notified_update
from report_export.core.models.common import ServiceModel, canonical_json
from report_export.core.models.jobs import Job
from report_export.core.models.reexports import Reexport
from report_export.core.observability import logger


class EventEntry(ServiceModel):
    detail_type: str
    detail: dict[str, Any]


class Notification(ServiceModel):
    subject: str
    message: str
    attributes: dict[str, str]


class Announcement(ServiceModel):
    event: EventEntry
    notification: Notification
    # One transaction once the notification went out: the job's notification_sent_at and, for a re-export,
    # the record's. Without the event published, only the job's: the lineage was not announced in full.
    notified: list[dict[str, Any]]
    notified_without_event: list[dict[str, Any]]
    rolled_back: bool = False


class Transaction(ServiceModel):
    items: list[dict[str, Any]]
    # TransactWriteItems' ClientRequestToken: a retried store is applied once.
    token: str


class Rollback(ServiceModel):
    items: list[dict[str, Any]]
    token: str
    announcement: Announcement


class StoredObject(ServiceModel):
    bucket: str
    key: str


class ExecutionInput(ServiceModel):
    # The job id and attempt (and what handed it over, when not the generator): a duplicate start is harmless.
    name: str
    tenant_id: str
    job_id: str
    job_type: str
    attempt: int
    # "announce": a job that ended earlier but was never announced; nothing is stored, only announced.
    outcome: Literal["succeeded", "failed", "announce"]
    key: dict[str, Any]
    store: Transaction | None
    announcement: Announcement
    # A success only: the new object, deleted if the result cannot be stored, and how the job then fails.
    object: StoredObject | None = None
    rollback: Rollback | None = None


def announcement(
    table_name: str,
    job: Job,
    record: Reexport | None,
    *,
    event: EventEntry,
    notification: Notification,
    now: str,
    rolled_back: bool = False,
) -> Announcement:
    job_notified = notified_update(keys.job_key(job.tenant_id, job.id), now).as_transact_item(table_name)
    items = [job_notified]
    if record is not None:
        # Only while the record has the status announced.
        record_key = keys.reexport_key(record.tenant_id, record.id)
        items.append(notified_update(record_key, now, while_status=record.status.value).as_transact_item(table_name))
    return Announcement(
        event=event,
        notification=notification,
        notified=items,
        notified_without_event=[job_notified],
        rolled_back=rolled_back,
    )


def execution_input(
    job: Job,
    attempt: int,
    *,
    outcome: Literal["succeeded", "failed", "announce"],
    store_items: list[dict[str, Any]] | None,
    announced: Announcement,
    stored_object: StoredObject | None = None,
    rollback: Rollback | None = None,
    handed_over_by: str | None = None,
) -> ExecutionInput:
    return ExecutionInput(
        name=f"{job.id}-{attempt}" + (f"-{handed_over_by}" if handed_over_by else ""),
        tenant_id=job.tenant_id,
        job_id=job.id,
        job_type=job.job_type.value,
        attempt=attempt,
        outcome=outcome,
        key=keys.job_key(job.tenant_id, job.id),
        store=None
        if store_items is None
        else Transaction(
            items=store_items, token=str(uuid5(NAMESPACE_URL, f"report-export:{job.id}:{attempt}:{outcome}"))
        ),
        announcement=announced,
        object=stored_object,
        rollback=rollback,
    )


def request_token(job: Job, attempt: int, step: str) -> str:
    """TransactWriteItems' ClientRequestToken (36 characters at most): a retried write is applied once."""
    return str(uuid5(NAMESPACE_URL, f"report-export:{job.id}:{attempt}:{step}"))


class ResultStateMachine:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def start(self, execution: ExecutionInput) -> None:
        try:
            self._client.start_execution(
                stateMachineArn=self._arn,
                name=execution.name,
                input=canonical_json(execution.model_dump(mode="json", exclude_none=True)),
            )
        except self._client.exceptions.ExecutionAlreadyExists:
            logger.info("The store-and-notify execution was already started")
