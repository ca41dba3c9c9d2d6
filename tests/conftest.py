"""Shared fixtures: an emulated AWS account (moto, in process) with the template's resources,
and a client that invokes the real API handler with HTTP API v2 events."""

from __future__ import annotations

import functools
import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Before any handler module is imported: no real AWS, no X-Ray daemon, a metrics namespace.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
        "POWERTOOLS_SERVICE_NAME": "report-export",
        "POWERTOOLS_METRICS_NAMESPACE": "ReportExport",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        "TABLE_NAME": "report-export-jobs",
        "GENERATE_QUEUE_URL": "set-by-the-aws-fixture",
        "SIGNING_SECRET_PARAMETER": "/report-export/signing-secret",
        "TENANT_CLAIM": "tenant_id",
        "ROLES_CLAIM": "roles",
        "MAX_PERIOD_DAYS": "366",
        "REPORTS_BUCKET": "report-export-reports",
        "PUBLIC_API_URL": "https://api.example.test",
        "INTERNAL_SERVICE_TOKEN_PARAMETER": "/report-export/internal-service-token",
        "STATE_MACHINE_ARN": "set-by-the-aws-fixture",
        "PROGRESS_INTERVAL_SEC": "0",
        "MAX_RECEIVE_COUNT": "3",
        "UPSTREAM_MAX_ATTEMPTS": "3",
        "UPSTREAM_BACKOFF_BASE_SEC": "0.01",
        "SCHEDULE_GROUP_NAME": "report-export-test",
        "SCHEDULED_EXPORT_FUNCTION_ARN": "arn:aws:lambda:eu-west-1:123456789012:function:report-export-scheduled",
        "SCHEDULER_ROLE_ARN": "arn:aws:iam::123456789012:role/report-export-scheduler",
        "SCHEDULE_DEAD_LETTER_ARN": "arn:aws:sqs:eu-west-1:123456789012:report-export-scheduled-dlq",
    }
)

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.core.botocore_stubber import BotocoreStubber  # noqa: E402
from moto.stepfunctions.parser.models import StepFunctionsParserBackend  # noqa: E402

from api.paging import cursor_codec  # noqa: E402
from report_export.aws import (
    clients,  # noqa: E402
    secrets,  # noqa: E402
)
from report_export.core.settings import get_settings  # noqa: E402
from report_export.generation import generator as generation  # noqa: E402
from report_export.generation.report_size import report_size_check  # noqa: E402
from report_export.jobs.downloads import download_service  # noqa: E402
from report_export.jobs.legal_holds import legal_holds  # noqa: E402
from report_export.jobs.service import job_service  # noqa: E402
from report_export.reexports.requests import reexport_requests  # noqa: E402
from report_export.reexports.results import reexport_results  # noqa: E402
from report_export.schedules.exports import scheduled_exports  # noqa: E402
from report_export.schedules.service import schedule_service  # noqa: E402
from report_export.subscriptions.service import subscription_service  # noqa: E402
from report_export.sweeping.sweeper import sweeper  # noqa: E402

from support import aws_calls  # noqa: E402
from support.events import claims_for, http_event  # noqa: E402
from support.state_machine import create_report_state_machine, wait_for_execution  # noqa: E402
from support.template import create_bucket, create_queue_with_dead_letter_queue, create_table  # noqa: E402
from support.upstream import SampleUpstream  # noqa: E402

# moto parses a definition on create_state_machine only to validate it, then drops the result; every
# test creates the same machine, and the parse is a third of the fixture's time. A definition that
# fails validation raises, and lru_cache does not remember a raise, so it fails every time.
StepFunctionsParserBackend._validate_definition = staticmethod(
    functools.lru_cache(maxsize=8)(StepFunctionsParserBackend._validate_definition)
)


def _forget_cold_start_state() -> None:
    get_settings.cache_clear()
    clients.reset()
    secrets.reset()
    job_service.cache_clear()
    download_service.cache_clear()
    legal_holds.cache_clear()
    reexport_requests.cache_clear()
    cursor_codec.cache_clear()
    reexport_results.cache_clear()
    generation.reset()
    report_size_check.cache_clear()
    sweeper.cache_clear()
    scheduled_exports.cache_clear()
    schedule_service.cache_clear()
    subscription_service.cache_clear()


def pytest_configure(config: pytest.Config) -> None:
    aws_calls.install()
    config.pluginmanager.register(aws_calls.Plugin(config), "least-privilege")
    directory = os.environ.get("RELIABILITY_DIR")
    if directory:
        from support.reliability import Recorder

        config.pluginmanager.register(Recorder(directory), "reliability-recorder")


@pytest.fixture
def measured(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Figures a reliability scenario measured: they go into its row of docs/reliability.md."""
    figures: dict[str, Any] = {}
    request.node.measured = figures
    return figures


@dataclass
class Aws:
    dynamodb: Any
    sqs: Any
    ssm: Any
    s3: Any
    sfn: Any
    table_name: str
    queue_url: str
    dead_letter_queue_url: str
    bucket: str
    state_machine_arn: str
    notifications_queue_url: str
    events_queue_url: str

    def queued_messages(self) -> list[dict[str, Any]]:
        """Every message now visible on the generation queue (left there, invisible for a moment)."""
        return [json.loads(message["Body"]) for message in self.receive_all(self.queue_url)]

    def receive_all(self, queue_url: str, visibility_timeout: int = 30) -> list[dict[str, Any]]:
        messages = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                VisibilityTimeout=visibility_timeout,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            if not batch.get("Messages"):
                return messages
            messages.extend(batch["Messages"])

    def notifications(self) -> list[dict[str, Any]]:
        """SNS notifications as a subscriber receives them (the SNS envelope, parsed)."""
        return [json.loads(message["Body"]) for message in self.receive_all(self.notifications_queue_url)]

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(message["Body"]) for message in self.receive_all(self.events_queue_url)]

    def job_items(self, tenant: str) -> list[dict[str, Any]]:
        response = self.dynamodb.query(
            TableName=self.table_name,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :job)",
            ExpressionAttributeValues={":pk": {"S": f"TENANT#{tenant}"}, ":job": {"S": "JOB#"}},
        )
        return response["Items"]

    def wait_for_executions(self) -> list[dict[str, Any]]:
        executions = self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]
        return [wait_for_execution(self.sfn, execution["executionArn"]) for execution in executions]


@pytest.fixture(scope="session")
def upstream() -> Iterator[SampleUpstream]:
    server = SampleUpstream().start()
    yield server
    server.stop()


def _observe_topic_and_bus(sqs: Any, sns: Any, events: Any, topic_arn: str) -> tuple[str, str]:
    """Queues that receive what the state machine publishes, so tests can read it as subscribers do."""
    notifications_url = sqs.create_queue(QueueName="observed-notifications")["QueueUrl"]
    notifications_arn = sqs.get_queue_attributes(QueueUrl=notifications_url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=notifications_arn["Attributes"]["QueueArn"])
    events_url = sqs.create_queue(QueueName="observed-events")["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="observe-report-events", EventPattern=json.dumps({"source": ["report-export"]}))
    events.put_targets(Rule="observe-report-events", Targets=[{"Id": "observed", "Arn": events_arn}])
    return notifications_url, events_url


def _one_request_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to the emulated AWS handled one at a time.

    DynamoDB applies each request, a transaction included, atomically. moto's in-process
    backend does not guard against threads: a transaction copies a table while another thread
    writes to it ("dictionary changed size during iteration"), and a cancelled transaction
    restores a snapshot taken before a concurrent commit. Threads are everywhere here (the state
    machine's executions run in moto's own, while the test goes on; bursts; slices), so requests
    are serialized the way the real service serializes conflicting writes. Client-side code still
    runs fully in parallel.
    """
    lock = threading.RLock()
    unserialized = BotocoreStubber.process_request

    def one_request_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return unserialized(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", one_request_at_a_time)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, upstream: SampleUpstream) -> Iterator[Aws]:
    upstream.reset()
    _one_request_at_a_time(monkeypatch)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        dynamodb = boto3.client("dynamodb")
        sqs = boto3.client("sqs")
        ssm = boto3.client("ssm")
        s3 = boto3.client("s3")
        sfn = boto3.client("stepfunctions")
        sns = boto3.client("sns")
        table_name = os.environ["TABLE_NAME"]
        bucket = os.environ["REPORTS_BUCKET"]
        create_table(dynamodb, "JobsTable", table_name)
        queue_url, dlq_url = create_queue_with_dead_letter_queue(sqs, "GenerateQueue", "report-generate", 3)
        create_bucket(s3, "ReportsBucket", bucket)
        topic_arn = sns.create_topic(Name="report-export")["TopicArn"]
        notifications_url, events_url = _observe_topic_and_bus(sqs, sns, boto3.client("events"), topic_arn)
        state_machine_arn = create_report_state_machine(
            sfn,
            substitutions={
                "JobsTableName": table_name,
                "ReportsBucketName": bucket,
                "ReportTopicArn": topic_arn,
                "EventBusName": "default",
            },
        )
        ssm.put_parameter(
            Name=os.environ["SIGNING_SECRET_PARAMETER"], Type="SecureString", Value=f"test-secret-{uuid.uuid4()}"
        )
        ssm.put_parameter(
            Name=os.environ["INTERNAL_SERVICE_TOKEN_PARAMETER"], Type="SecureString", Value="upstream-service-token"
        )
        boto3.client("scheduler").create_schedule_group(Name=os.environ["SCHEDULE_GROUP_NAME"])
        monkeypatch.setenv("GENERATE_QUEUE_URL", queue_url)
        monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", dlq_url)
        monkeypatch.setenv("STATE_MACHINE_ARN", state_machine_arn)
        monkeypatch.setenv("REPORT_TOPIC_ARN", topic_arn)
        for service in ("FEED", "TELEMETRY", "WEIGHVISION", "ACTIVITY"):
            monkeypatch.setenv(f"{service}_SERVICE_URL", upstream.url)
        _forget_cold_start_state()
        yield Aws(
            dynamodb,
            sqs,
            ssm,
            s3,
            sfn,
            table_name,
            queue_url,
            dlq_url,
            bucket,
            state_machine_arn,
            notifications_url,
            events_url,
        )
    _forget_cold_start_state()


@pytest.fixture
def serialized_aws(aws: Aws) -> Aws:
    """The emulated AWS, named so in the concurrency tests: every `aws` serializes its requests
    (see _one_request_at_a_time), which those tests rely on."""
    return aws


@dataclass
class LambdaContextStub:
    function_name: str = "report-export-api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:report-export-api"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # As a real invocation of the API function starts: its 28 s timeout ahead.
    remaining_ms: int = 28_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        return self.json["error"]["code"]


class ApiClient:
    """Calls the API Lambda's handler the way API Gateway does."""

    def __init__(self) -> None:
        from api.handler import lambda_handler

        self._handler = lambda_handler

    def invoke(self, event: dict[str, Any], *, remaining_ms: int = 28_000) -> ApiResponse:
        result = self._handler(event, LambdaContextStub(remaining_ms=remaining_ms))
        headers = {name.lower(): value for name, value in (result.get("headers") or {}).items()}
        return ApiResponse(int(result["statusCode"]), headers, result.get("body") or "")

    def call(
        self,
        method: str,
        path: str,
        *,
        tenant: str | None = "tenant-a",
        roles: Any = "[tenant_admin]",
        sub: str = "user-1",
        authenticated: bool = True,
        body: Any = None,
        raw_body: str | None = None,
        query: dict[str, Any] | None = None,
    ) -> ApiResponse:
        claims = claims_for(tenant, roles, sub) if authenticated else None
        return self.invoke(http_event(method, path, claims=claims, body=body, raw_body=raw_body, query=query))

    def create_job(self, body: dict[str, Any] | None = None, **kwargs: Any) -> ApiResponse:
        return self.call("POST", "/api/v1/reports/jobs", body=valid_job_request() if body is None else body, **kwargs)

    def read_all_pages(self, path: str, limit: int, **query: Any) -> list[list[str]]:
        """The ids of every page of a list, following next_cursor to the end."""
        pages: list[list[str]] = []
        cursor = None
        while True:
            response = self.call("GET", path, query={"limit": limit, "next_cursor": cursor, **query})
            assert response.status == 200, response.body
            pages.append([item["id"] for item in response.json["items"]])
            cursor = response.json["next_cursor"]
            if cursor is None:
                return pages
            assert len(pages) < 50, "pagination does not end"


def take_over_before_the_store(aws: Aws, monkeypatch: pytest.MonkeyPatch, job_id: str) -> None:
    """Another attempt claims the job between the upload and the store: the store's condition fails."""
    sfn = clients.stepfunctions()
    real_start = sfn.start_execution

    def take_over_then_start(**kwargs: Any) -> Any:
        aws.dynamodb.update_item(
            TableName=aws.table_name,
            Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{job_id}"}},
            UpdateExpression="SET attempt = attempt + :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
        return real_start(**kwargs)

    monkeypatch.setattr(sfn, "start_execution", take_over_then_start)


def valid_job_request(**overrides: Any) -> dict[str, Any]:
    request = {
        "job_type": "FEED_INTAKE_EXPORT",
        "format": "csv",
        "farm_id": "018f1a84-bb0e-7d3f-b2e4-9e8b5f8e0002",
        "start_date": "2025-01-01",
        "end_date": "2025-01-31",
        "filters": {"source": "MANUAL"},
    }
    request.update(overrides)
    return {name: value for name, value in request.items() if value is not None}


@pytest.fixture
def api(aws: Aws) -> ApiClient:
    return ApiClient()
