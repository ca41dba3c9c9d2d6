"""Shared fixtures: an emulated AWS account (moto, in process) with the template's resources,
and a client that invokes the real API handler with HTTP API v2 events."""

from __future__ import annotations

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
    }
)

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.core.botocore_stubber import BotocoreStubber  # noqa: E402

from report_export import clients, signing  # noqa: E402
from report_export.jobs import job_service  # noqa: E402
from report_export.settings import get_settings  # noqa: E402

from support.events import claims_for, http_event  # noqa: E402
from support.template import create_queue_with_dead_letter_queue, create_table  # noqa: E402


def _forget_cold_start_state() -> None:
    get_settings.cache_clear()
    clients.reset()
    signing.reset()
    job_service.cache_clear()


@dataclass
class Aws:
    dynamodb: Any
    sqs: Any
    ssm: Any
    table_name: str
    queue_url: str
    dead_letter_queue_url: str

    def queued_messages(self) -> list[dict[str, Any]]:
        """Every message now visible on the generation queue (left there, invisible for a moment)."""
        bodies = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30)
            messages = batch.get("Messages", [])
            if not messages:
                return bodies
            bodies.extend(json.loads(message["Body"]) for message in messages)

    def job_items(self, tenant: str) -> list[dict[str, Any]]:
        response = self.dynamodb.query(
            TableName=self.table_name,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :job)",
            ExpressionAttributeValues={":pk": {"S": f"TENANT#{tenant}"}, ":job": {"S": "JOB#"}},
        )
        return response["Items"]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        sqs = boto3.client("sqs")
        ssm = boto3.client("ssm")
        table_name = os.environ["TABLE_NAME"]
        create_table(dynamodb, "JobsTable", table_name)
        queue_url, dlq_url = create_queue_with_dead_letter_queue(sqs, "GenerateQueue", "report-generate", 5)
        ssm.put_parameter(
            Name=os.environ["SIGNING_SECRET_PARAMETER"], Type="SecureString", Value=f"test-secret-{uuid.uuid4()}"
        )
        monkeypatch.setenv("GENERATE_QUEUE_URL", queue_url)
        _forget_cold_start_state()
        yield Aws(dynamodb, sqs, ssm, table_name, queue_url, dlq_url)
    _forget_cold_start_state()


@pytest.fixture
def serialized_aws(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Aws:
    """Requests to the emulated AWS handled one at a time.

    DynamoDB applies each request, a transaction included, atomically. moto's in-process
    backend does not guard against threads (a cancelled transaction restores a table snapshot
    taken before a concurrent commit), so concurrency tests serialize requests the way the real
    service serializes conflicting writes. Client-side code still runs fully in parallel.
    """
    lock = threading.RLock()
    unserialized = BotocoreStubber.process_request

    def one_request_at_a_time(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return unserialized(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", one_request_at_a_time)
    return aws


@dataclass
class LambdaContextStub:
    function_name: str = "report-export-api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:report-export-api"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


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

    def invoke(self, event: dict[str, Any]) -> ApiResponse:
        result = self._handler(event, LambdaContextStub())
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
