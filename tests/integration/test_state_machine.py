"""The store-and-notify state machine: the real statemachine/report_result.asl.json, executed by moto.

moto runs executions on a thread of its own against the same in-process DynamoDB, S3, SNS,
EventBridge and SQS, so each test starts an execution, waits for it to leave RUNNING and then
reads what it left behind: the job item, the report object, the SQS queues subscribed to the
topic and to the bus.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from report_export.aws.stepfunctions import ExecutionInput

from support.least_privilege import STATE_MACHINE, template_roles
from support.state_machine import (
    ANNOUNCED_PATH,
    DEFINITION_PATH,
    create_report_state_machine,
    definition_placeholders,
    render_definition,
    required_iam_actions,
    state_names,
    task_resources,
    template_substitution_names,
    wait_for_execution,
)
from support.template import create_table

# The tests here name the table, topic and bus themselves (a bus other than the default, for one).
pytestmark = pytest.mark.own_resource_names

JOB_TYPE = "FEED_INTAKE_EXPORT"
CREATED_AT = "2025-02-01T10:00:00.000Z"
NOW = "2025-02-01T10:05:00.000Z"
EXPIRES_AT = "2025-02-08T10:05:00.000Z"
REPORT_BODY = b"date,feed_kg\n2025-01-01,12.5\n"
SUBSTITUTION_NAMES = {"JobsTableName", "ReportsBucketName", "ReportTopicArn", "EventBusName"}


@dataclass
class World:
    """One emulated account for the module (parsing the ASL is slow in moto), a new tenant and job per test."""

    sfn: Any
    dynamodb: Any
    s3: Any
    sns: Any
    sqs: Any
    state_machine_arn: str
    table_name: str
    bucket: str
    topic_name: str
    topic_arn: str
    notifications_queue_url: str
    events_queue_url: str
    tenant: str = ""
    job_id: str = ""

    @property
    def key(self) -> dict[str, Any]:
        return {"PK": {"S": f"TENANT#{self.tenant}"}, "SK": {"S": f"JOB#{self.job_id}"}}

    def object_key(self, attempt: int = 1) -> str:
        return f"tenants/{self.tenant}/jobs/{self.job_id}/attempt-{attempt}/report.csv"

    def put_job(self, *, status: str = "running", attempt: int = 1, version: int = 3, **extra: str) -> None:
        item = {
            **self.key,
            "GSI1PK": {"S": f"TENANT#{self.tenant}#STATUS#{status}"},
            "GSI1SK": {"S": f"JOB#{self.job_id}"},
            "GSI2PK": {"S": f"TENANT#{self.tenant}#TYPE#{JOB_TYPE}"},
            "GSI2SK": {"S": f"JOB#{self.job_id}"},
            "id": {"S": self.job_id},
            "tenant_id": {"S": self.tenant},
            "requested_by": {"S": "user-1"},
            "job_type": {"S": JOB_TYPE},
            "format": {"S": "csv"},
            "status": {"S": status},
            "progress_pct": {"N": "40"},
            "attempt": {"N": str(attempt)},
            "version": {"N": str(version)},
            "created_at": {"S": CREATED_AT},
            "updated_at": {"S": CREATED_AT},
            **{name: {"S": value} for name, value in extra.items()},
        }
        self.dynamodb.put_item(TableName=self.table_name, Item=item)

    def job(self) -> dict[str, Any]:
        return self.dynamodb.get_item(TableName=self.table_name, Key=self.key, ConsistentRead=True)["Item"]

    def put_record(self, *, status: str) -> dict[str, Any]:
        """A re-export record of the job (only what a notified item's condition reads); returns its key."""
        key = {"PK": {"S": f"TENANT#{self.tenant}"}, "SK": {"S": f"REEXPORT#{self.job_id}"}}
        self.dynamodb.put_item(TableName=self.table_name, Item={**key, "status": {"S": status}, "version": {"N": "2"}})
        return key

    def item(self, key: dict[str, Any]) -> dict[str, Any]:
        return self.dynamodb.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)["Item"]

    def job_ids_with_status(self, status: str) -> list[str]:
        response = self.dynamodb.query(
            TableName=self.table_name,
            IndexName="ByStatus",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"TENANT#{self.tenant}#STATUS#{status}"}},
        )
        return [item["id"]["S"] for item in response["Items"]]

    def put_report(self, key: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=REPORT_BODY)

    def report_exists(self, key: str) -> bool:
        return "Contents" in self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key)

    def run(self, execution_input: dict[str, Any]) -> dict[str, Any]:
        started = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=execution_name(execution_input),
            input=json.dumps(execution_input),
        )
        return wait_for_execution(self.sfn, started["executionArn"], timeout_s=20)

    def executions(self) -> list[dict[str, Any]]:
        listed = self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
        return [execution for execution in listed if execution["name"].startswith(self.job_id)]

    def notifications(self) -> list[dict[str, Any]]:
        """SNS envelopes (RawMessageDelivery off: subject and message attributes travel in the body)."""
        return [json.loads(body) for body in self._drain(self.notifications_queue_url)]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self._drain(self.events_queue_url)]

    def _drain(self, queue_url: str) -> list[str]:
        bodies: list[str] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = batch.get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                bodies.append(message["Body"])
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def subscribe_queue_to_topic(self) -> None:
        """Create the topic (again: the same name gives the same ARN) and its queue subscription."""
        assert self.sns.create_topic(Name=self.topic_name)["TopicArn"] == self.topic_arn
        if not self.sns.list_subscriptions_by_topic(TopicArn=self.topic_arn)["Subscriptions"]:
            self.sns.subscribe(
                TopicArn=self.topic_arn,
                Protocol="sqs",
                Endpoint=_queue_arn(self.sqs, self.notifications_queue_url),
                Attributes={"RawMessageDelivery": "false"},
            )


def _queue_arn(sqs: Any, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


@pytest.fixture(scope="module")
def account() -> Iterator[World]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        dynamodb = boto3.client("dynamodb")
        s3 = boto3.client("s3")
        sns = boto3.client("sns")
        sqs = boto3.client("sqs")
        events = boto3.client("events")
        sfn = boto3.client("stepfunctions")

        table_name = "jobs"
        create_table(dynamodb, "JobsTable", table_name)
        bucket = "report-export-reports"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": s3.meta.region_name})
        topic_name = "report-export-notifications"
        topic_arn = sns.create_topic(Name=topic_name)["TopicArn"]
        notifications_queue_url = sqs.create_queue(QueueName="notifications")["QueueUrl"]

        bus_name = "report-export"  # not the default bus: proves the ASL names the bus it was given
        events.create_event_bus(Name=bus_name)
        events_queue_url = sqs.create_queue(QueueName="report-events")["QueueUrl"]
        events.put_rule(Name="all-report-events", EventBusName=bus_name, EventPattern='{"source": ["report-export"]}')
        events.put_targets(
            Rule="all-report-events",
            EventBusName=bus_name,
            Targets=[{"Id": "queue", "Arn": _queue_arn(sqs, events_queue_url)}],
        )

        state_machine_arn = create_report_state_machine(
            sfn,
            substitutions={
                "JobsTableName": table_name,
                "ReportsBucketName": bucket,
                "ReportTopicArn": topic_arn,
                "EventBusName": bus_name,
            },
        )
        world = World(
            sfn, dynamodb, s3, sns, sqs, state_machine_arn, table_name, bucket, topic_name, topic_arn,
            notifications_queue_url, events_queue_url,
        )  # fmt: skip
        world.subscribe_queue_to_topic()
        yield world


_test_numbers = itertools.count(1)


@pytest.fixture
def world(account: World) -> Iterator[World]:
    account.subscribe_queue_to_topic()  # a test may have deleted the topic
    account.notifications()  # whatever an earlier test left unread
    account.events()
    yield replace(account, tenant=f"t{next(_test_numbers)}", job_id=str(uuid.uuid4()))


# --- the execution input, as the generator Lambda builds it -------------------------------------------------
# Hand-written in the shape ExecutionInput takes (report_export.aws.stepfunctions): the definition is tested
# against what it is given, not against the Python builders.


def execution_name(execution_input: dict[str, Any]) -> str:
    return f"{execution_input['job_id']}-{execution_input['attempt']}"


def _update(
    world: World,
    update_expression: str,
    condition_expression: str,
    names: dict[str, str],
    values: dict[str, Any],
    *,
    key: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One TransactWriteItems item: a conditional update, its table named (the items carry it, not the ASL)."""
    return {
        "Update": {
            "TableName": world.table_name,
            "Key": key or world.key,
            "UpdateExpression": update_expression,
            "ConditionExpression": condition_expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
    }


def _attempt_guard(attempt: int) -> dict[str, Any]:
    return {
        "condition_expression": "#status = :running AND attempt = :attempt",
        "values": {":running": {"S": "running"}, ":attempt": {"N": str(attempt)}, ":one": {"N": "1"}},
    }


def _success_item(world: World, attempt: int) -> dict[str, Any]:
    guard = _attempt_guard(attempt)
    return _update(
        world,
        "SET #status = :succeeded, GSI1PK = :gsi1pk, file_path = :file_path, "
        "file_name = :file_name, mime_type = :mime_type, size_bytes = :size_bytes, sha256 = :sha256, "
        "row_count = :row_count, expires_at = :expires_at, progress_pct = :hundred, updated_at = :now, "
        "#version = #version + :one",
        guard["condition_expression"],
        {"#status": "status", "#version": "version"},
        {
            **guard["values"],
            ":succeeded": {"S": "succeeded"},
            ":gsi1pk": {"S": f"TENANT#{world.tenant}#STATUS#succeeded"},
            ":file_path": {"S": world.object_key(attempt)},
            ":file_name": {"S": "report.csv"},
            ":mime_type": {"S": "text/csv"},
            ":size_bytes": {"N": str(len(REPORT_BODY))},
            ":sha256": {"S": "0" * 64},
            ":row_count": {"N": "1"},
            ":expires_at": {"S": EXPIRES_AT},
            ":hundred": {"N": "100"},
            ":now": {"S": NOW},
        },
    )


def _failure_item(world: World, attempt: int, error_code: str, error_message: str) -> dict[str, Any]:
    guard = _attempt_guard(attempt)
    return _update(
        world,
        "SET #status = :failed, GSI1PK = :gsi1pk, error_code = :error_code, "
        "error_message = :error_message, updated_at = :now, #version = #version + :one",
        guard["condition_expression"],
        {"#status": "status", "#version": "version"},
        {
            **guard["values"],
            ":failed": {"S": "failed"},
            ":gsi1pk": {"S": f"TENANT#{world.tenant}#STATUS#failed"},
            ":error_code": {"S": error_code},
            ":error_message": {"S": error_message},
            ":now": {"S": NOW},
        },
    )


def _notified_item(world: World) -> dict[str, Any]:
    return _update(
        world,
        "SET notification_sent_at = :now, #version = #version + :one",
        "attribute_exists(PK)",
        {"#version": "version"},
        {":now": {"S": NOW}, ":one": {"N": "1"}},
    )


def _announcement(
    world: World, status: str, detail: dict[str, Any], subject: str, message: str, *, rolled_back: bool = False
) -> dict[str, Any]:
    # A plain job (no re-export): the job alone is marked notified, with or without the event.
    return {
        "event": {
            "detail_type": f"Report Job {status.capitalize()}",
            "detail": {
                "tenant_id": world.tenant,
                "job_id": world.job_id,
                "job_type": JOB_TYPE,
                "status": status,
                **detail,
            },
        },
        "notification": {
            "subject": subject,
            "message": message,
            "attributes": {
                "tenant_id": world.tenant,
                "status": status,
                "job_type": JOB_TYPE,
                "carries_link": "true" if status == "succeeded" else "false",
            },
        },
        "notified": [_notified_item(world)],
        "notified_without_event": [_notified_item(world)],
        "rolled_back": rolled_back,
    }


def result_input(world: World, outcome: str = "succeeded", *, attempt: int = 1) -> dict[str, Any]:
    execution_input: dict[str, Any] = {
        "name": f"{world.job_id}-{attempt}",
        "tenant_id": world.tenant,
        "job_id": world.job_id,
        "job_type": JOB_TYPE,
        "attempt": attempt,
        "outcome": outcome,
        "key": world.key,
    }
    token = str(uuid.uuid5(uuid.NAMESPACE_URL, f"report-export:{world.job_id}:{attempt}:{outcome}"))
    if outcome == "succeeded":
        execution_input["store"] = {"items": [_success_item(world, attempt)], "token": token}
        execution_input["announcement"] = _announcement(
            world,
            "succeeded",
            {"attempt": attempt, "file_name": "report.csv", "size_bytes": len(REPORT_BODY), "row_count": 1},
            "Report ready: FEED_INTAKE_EXPORT",
            f"Your report is ready.\n\nDownload (link valid until {EXPIRES_AT}):\n"
            f"https://reports.example.com/api/v1/reports/jobs/{world.job_id}/download?token=signed-token\n",
        )
        execution_input["object"] = {"bucket": world.bucket, "key": world.object_key(attempt)}
        execution_input["rollback"] = {
            "items": [_failure_item(world, attempt, "STORE_FAILED", "The report could not be stored.")],
            "token": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{world.job_id}:{attempt}:rollback")),
            "announcement": _announcement(
                world,
                "failed",
                {"attempt": attempt, "error_code": "STORE_FAILED"},
                "Report failed: FEED_INTAKE_EXPORT",
                "Your report could not be stored. Please request it again.",
                rolled_back=True,
            ),
        }
    else:
        # A failure has no object to delete and no rollback: the input leaves both out.
        execution_input["store"] = {
            "items": [_failure_item(world, attempt, "NO_DATA", "No data in the requested period.")],
            "token": token,
        }
        execution_input["announcement"] = _announcement(
            world,
            "failed",
            {"attempt": attempt, "error_code": "NO_DATA"},
            "Report failed: FEED_INTAKE_EXPORT",
            "Your report could not be produced: no data in the requested period.",
        )
    ExecutionInput.model_validate(execution_input)  # the hand-written input keeps the generator's contract
    return execution_input


# --- the definition itself ----------------------------------------------------------------------------------


def test_given_the_definition_then_it_uses_exactly_the_sam_substitutions_and_no_lambda():
    definition = json.loads(DEFINITION_PATH.read_text(encoding="utf-8"))
    resources = task_resources()

    assert definition_placeholders() == SUBSTITUTION_NAMES
    assert resources and all(resource.startswith("arn:aws:states:::") for resource in resources)
    assert not [resource for resource in resources if "lambda" in resource]
    assert all(re.fullmatch(r"[A-Z][a-z]+( [A-Z][a-z]+)+", name) for name in definition["States"])


def test_given_the_template_declares_the_state_machine_then_its_substitutions_match_the_definition():
    names = template_substitution_names()
    if names is None:
        pytest.skip("template.yaml has no ReportResultStateMachine yet")

    assert names == SUBSTITUTION_NAMES


def test_given_the_template_declares_the_state_machine_then_its_role_may_call_every_integration():
    granted = {action for statement in template_roles()[STATE_MACHINE].statements for action in statement.actions}

    # moto does not check IAM: without this a missing permission would first show in AWS.
    assert required_iam_actions() == {
        "dynamodb:UpdateItem",  # the Update items of every transaction: store, rollback, mark notified
        "dynamodb:GetItem",  # Read Job
        "dynamodb:PutItem",  # history entries, in the re-export transactions
        "s3:DeleteObject",
        "sns:Publish",
        "events:PutEvents",
    }
    assert required_iam_actions() - granted == set()


def test_given_a_missing_substitution_when_rendering_then_it_fails_loudly():
    substitutions = dict.fromkeys(SUBSTITUTION_NAMES - {"EventBusName"}, "x")

    with pytest.raises(ValueError, match="EventBusName"):
        render_definition(substitutions)


# --- executions ---------------------------------------------------------------------------------------------


def test_given_running_job_when_result_succeeds_then_job_is_stored_announced_and_marked_notified(world):
    world.put_job()
    world.put_report(world.object_key())

    execution = world.run(result_input(world, "succeeded"))

    assert execution["status"] == "SUCCEEDED"
    job = world.job()
    assert job["status"] == {"S": "succeeded"}
    assert job["file_path"] == {"S": world.object_key()}
    assert (job["file_name"], job["mime_type"]) == ({"S": "report.csv"}, {"S": "text/csv"})
    assert (job["size_bytes"], job["row_count"]) == ({"N": str(len(REPORT_BODY))}, {"N": "1"})
    assert job["expires_at"] == {"S": EXPIRES_AT}
    assert job["version"] == {"N": "5"}  # 3, +1 storing the result, +1 recording the notification
    assert job["notification_sent_at"] == {"S": NOW}
    assert world.job_ids_with_status("succeeded") == [world.job_id]
    assert world.job_ids_with_status("running") == []
    assert world.report_exists(world.object_key())

    [notification] = world.notifications()
    assert notification["Subject"] == "Report ready: FEED_INTAKE_EXPORT"
    assert "download?token=signed-token" in notification["Message"]
    assert notification["MessageAttributes"] == {
        "tenant_id": {"Type": "String", "Value": world.tenant},
        "status": {"Type": "String", "Value": "succeeded"},
        "job_type": {"Type": "String", "Value": JOB_TYPE},
        "carries_link": {"Type": "String", "Value": "true"},
    }
    [event] = world.events()
    assert (event["source"], event["detail-type"]) == ("report-export", "Report Job Succeeded")
    assert event["detail"]["job_id"] == world.job_id
    assert event["detail"]["size_bytes"] == len(REPORT_BODY)
    assert execution["executionArn"] in event["resources"]


def test_given_running_job_when_outcome_failed_then_job_fails_with_error_and_is_announced(world):
    world.put_job()

    execution = world.run(result_input(world, "failed"))

    assert execution["status"] == "SUCCEEDED"
    job = world.job()
    assert job["status"] == {"S": "failed"}
    assert (job["error_code"], job["error_message"]) == ({"S": "NO_DATA"}, {"S": "No data in the requested period."})
    assert "file_path" not in job
    assert job["version"] == {"N": "5"}
    assert job["notification_sent_at"] == {"S": NOW}
    assert world.job_ids_with_status("failed") == [world.job_id]
    [notification] = world.notifications()
    assert notification["MessageAttributes"]["status"] == {"Type": "String", "Value": "failed"}
    [event] = world.events()
    assert event["detail-type"] == "Report Job Failed"
    assert event["detail"]["error_code"] == "NO_DATA"
    assert state_names(world.sfn, execution["executionArn"]) == ANNOUNCED_PATH


def test_given_cancelled_job_when_failure_arrives_then_job_stays_cancelled_and_nothing_is_announced(world):
    world.put_job(status="cancelled", version=4)
    before = world.job()

    execution = world.run(result_input(world, "failed"))

    assert (execution["status"], execution["error"]) == ("FAILED", "StoreFailed")
    assert world.job() == before
    assert world.notifications() == []
    assert world.events() == []


def test_given_cancelled_job_when_result_arrives_then_object_is_deleted_and_job_stays_cancelled(world):
    world.put_job(status="cancelled", version=4)
    world.put_report(world.object_key())
    before = world.job()

    execution = world.run(result_input(world, "succeeded"))

    assert execution["status"] == "FAILED"
    assert execution["error"] == "StoreFailed"
    assert "[ConditionalCheckFailed]" in execution["cause"]  # the transaction's cancellation reason
    assert not world.report_exists(world.object_key())
    assert world.job() == before
    assert world.notifications() == []
    assert world.events() == []
    visited = state_names(world.sfn, execution["executionArn"])
    assert visited[-3:] == ["Delete Report Object", "Mark Job Failed", "Fail Store"]


def test_given_newer_attempt_running_when_stale_result_arrives_then_its_object_is_deleted_and_newer_attempt_untouched(
    world,
):
    world.put_job(attempt=2, version=6)
    world.put_report(world.object_key(1))
    world.put_report(world.object_key(2))
    before = world.job()

    execution = world.run(result_input(world, "succeeded", attempt=1))

    assert (execution["status"], execution["error"]) == ("FAILED", "StoreFailed")
    assert not world.report_exists(world.object_key(1))
    assert world.report_exists(world.object_key(2))
    assert world.job() == before  # still running attempt 2: the rollback's own condition held it back
    assert world.notifications() == []
    assert world.events() == []


def test_given_store_rejected_while_job_still_running_when_rolled_back_then_job_fails_and_failure_is_announced(
    world,
):
    world.put_job()
    world.put_report(world.object_key())
    execution_input = result_input(world, "succeeded")
    execution_input["store"]["items"][0]["Update"]["UpdateExpression"] += ", note = :undefined"  # DynamoDB rejects it

    execution = world.run(execution_input)

    assert (execution["status"], execution["error"]) == ("FAILED", "StoreFailed")
    assert ":undefined" in execution["cause"]
    assert not world.report_exists(world.object_key())
    job = world.job()
    assert job["status"] == {"S": "failed"}
    assert job["error_code"] == {"S": "STORE_FAILED"}
    assert "file_path" not in job
    assert job["notification_sent_at"] == {"S": NOW}
    assert world.job_ids_with_status("failed") == [world.job_id]
    [notification] = world.notifications()
    assert notification["MessageAttributes"]["status"] == {"Type": "String", "Value": "failed"}
    [event] = world.events()
    assert (event["detail-type"], event["detail"]["error_code"]) == ("Report Job Failed", "STORE_FAILED")


def test_given_the_job_cannot_be_read_after_a_refused_store_then_the_file_is_not_deleted_from_under_it(world):
    # Read Job exists to learn whether a retried store landed after all; when it cannot tell, nothing is
    # deleted: the rollback's own condition decides (refused, had the store landed), and the file stays.
    world.put_job()
    world.put_report(world.object_key())
    execution_input = result_input(world, "succeeded")
    execution_input["store"]["items"][0]["Update"]["UpdateExpression"] += ", note = :undefined"
    execution_input["key"] = {"PK": execution_input["key"]["PK"]}  # GetItem refuses a key without its sort key

    execution = world.run(execution_input)

    assert (execution["status"], execution["error"]) == ("FAILED", "StoreFailed")
    visited = state_names(world.sfn, execution["executionArn"])
    assert "Delete Report Object" not in visited
    assert visited[visited.index("Read Job") :][:3] == ["Read Job", "Check Stored Result", "Mark Job Failed"]
    assert world.report_exists(world.object_key())
    assert (world.job()["status"], world.job()["error_code"]) == ({"S": "failed"}, {"S": "STORE_FAILED"})


@pytest.mark.reliability(
    scenario="EventBridge refuses the announcement",
    injected="PutEvents failing during notify",
    checked="the job stays succeeded; the e-mail goes out; the announcement is reported",
)
def test_given_event_refused_when_result_is_announced_then_mail_goes_out_and_only_the_job_is_marked_notified(world):
    # The lineage's record is marked notified only with its event published: without it, the job alone is.
    world.put_job()
    world.put_report(world.object_key())
    record_key = world.put_record(status="succeeded")
    execution_input = result_input(world, "succeeded")
    announcement = execution_input["announcement"]
    announcement["event"]["detail"] = "{not json"  # EventBridge refuses the entry (MalformedDetail)
    record_notified = _update(
        world,
        "SET notification_sent_at = :now, #version = #version + :one",
        "#status = :announced",
        {"#status": "status", "#version": "version"},
        {":now": {"S": NOW}, ":one": {"N": "1"}, ":announced": {"S": "succeeded"}},
        key=record_key,
    )
    announcement["notified"].append(record_notified)

    execution = world.run(execution_input)

    assert (execution["status"], execution["error"]) == ("FAILED", "AnnouncementFailed")
    job = world.job()
    assert job["status"] == {"S": "succeeded"}
    assert job["notification_sent_at"] == {"S": NOW}
    assert job["version"] == {"N": "5"}
    assert "notification_sent_at" not in world.item(record_key)
    assert world.report_exists(world.object_key())
    [notification] = world.notifications()
    assert notification["Subject"] == "Report ready: FEED_INTAKE_EXPORT"
    assert world.events() == []
    assert state_names(world.sfn, execution["executionArn"])[-6:] == [
        "Publish Event",
        "Keep Job Notice Only",
        "Notify Subscribers",
        "Mark Notified",
        "Check Completion",
        "Fail Announcement",
    ]


def test_given_result_already_stored_when_store_condition_fails_then_object_is_kept_and_result_announced(world):
    # What a retried Store Outcome sees when its first try was applied but the response was lost
    # (and its ClientRequestToken no longer made the retry a no-op).
    world.put_job(status="succeeded", version=4, file_path=world.object_key())
    world.put_report(world.object_key())

    execution = world.run(result_input(world, "succeeded"))

    assert execution["status"] == "SUCCEEDED"
    assert world.report_exists(world.object_key())
    job = world.job()
    assert job["status"] == {"S": "succeeded"}
    assert job["notification_sent_at"] == {"S": NOW}
    assert len(world.notifications()) == 1
    assert [event["detail-type"] for event in world.events()] == ["Report Job Succeeded"]
    assert "Delete Report Object" not in state_names(world.sfn, execution["executionArn"])


@pytest.mark.reliability(
    scenario="SNS unavailable during notify",
    injected="the topic gone when the result is announced",
    checked="the job stays succeeded; the execution reports the failed announcement",
)
def test_given_topic_gone_when_result_succeeds_then_result_stays_stored_and_execution_reports_the_announcement(
    world,
):
    world.put_job()
    world.put_report(world.object_key())
    world.sns.delete_topic(TopicArn=world.topic_arn)

    execution = world.run(result_input(world, "succeeded"))

    assert (execution["status"], execution["error"]) == ("FAILED", "AnnouncementFailed")
    job = world.job()
    assert job["status"] == {"S": "succeeded"}
    assert job["file_path"] == {"S": world.object_key()}
    assert "notification_sent_at" not in job
    assert world.report_exists(world.object_key())
    assert [event["detail-type"] for event in world.events()] == ["Report Job Succeeded"]


def test_given_announce_outcome_then_nothing_is_stored_and_the_job_is_announced(world):
    world.put_job()
    before = world.job()
    execution_input = result_input(world, "succeeded")
    execution_input.update(outcome="announce", store=None, object=None, rollback=None)

    execution = world.run(execution_input)

    assert execution["status"] == "SUCCEEDED"
    after = world.job()
    assert after["status"] == before["status"]  # the store step was skipped
    assert "notification_sent_at" in after
    assert [event["detail-type"] for event in world.events()] == ["Report Job Succeeded"]


def test_given_unknown_outcome_when_started_then_execution_fails_without_touching_the_job(world):
    world.put_job()
    before = world.job()
    execution_input = result_input(world, "succeeded")
    execution_input["outcome"] = "partial"

    execution = world.run(execution_input)

    assert (execution["status"], execution["error"]) == ("FAILED", "InvalidOutcome")
    assert world.job() == before


def test_given_finished_execution_when_started_again_with_the_same_name_then_execution_already_exists(world):
    world.put_job()
    world.put_report(world.object_key())
    execution_input = result_input(world, "succeeded")
    first = world.run(execution_input)
    assert first["status"] == "SUCCEEDED"
    changed_input = copy.deepcopy(execution_input)
    changed_input["announcement"]["notification"]["subject"] = "Another subject"

    for duplicate in (execution_input, changed_input):
        with pytest.raises(world.sfn.exceptions.ExecutionAlreadyExists):
            world.sfn.start_execution(
                stateMachineArn=world.state_machine_arn,
                name=execution_name(execution_input),
                input=json.dumps(duplicate),
            )

    assert [execution["status"] for execution in world.executions()] == ["SUCCEEDED"]
    assert world.job()["version"] == {"N": "5"}
    assert len(world.notifications()) == 1
