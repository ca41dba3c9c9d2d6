"""Every sample event in events/ is fed to its handler (the same files serve `sam local invoke`).

api_file_by_link.json carries a download token signed with SAMPLE_SIGNING_SECRET (expiring in 2100):
it opens the sample report wherever the signing secret parameter holds that value, as it does here.
"""

import hashlib
import json
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from report_export.aws import secrets
from report_export.core.auth import Principal
from report_export.core.models.common import JobStatus, JobType, now_utc
from report_export.core.models.jobs import Job
from report_export.core.models.schedules import ScheduleSpec
from report_export.core.models.subscriptions import SubscriptionRequest
from report_export.jobs.service import job_service
from report_export.reexports import requests as reexport_requests_module
from report_export.reexports.requests import reexport_requests
from report_export.reports import REPORT_DEFINITIONS
from report_export.schedules import service as schedule_service_module
from report_export.schedules.service import schedule_service
from report_export.subscriptions import service as subscription_service_module
from report_export.subscriptions.service import subscription_service

from conftest import LambdaContextStub
from support.reexports import put_job
from support.sweeping import forget_when_the_job_was_queued

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_JOB_ID = "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f"
SAMPLE_TENANT = "018f1a84-bb0e-7d3f-b2e4-9e8b5f8e0001"
SAMPLE_READY_JOB_ID = "019a8f10-5c2d-7e3f-8a4b-6c7d8e9f0a1b"
SAMPLE_SIGNING_SECRET = "sample-signing-secret-not-for-production"
SAMPLE_REPORT = b"id,date,farm_id\r\nk-1,2025-01-01,farm-1\r\n"

EXPECTED = {
    "api_health.json": 200,
    "api_ready.json": 200,
    "api_docs.json": 200,
    "api_openapi_json.json": 200,
    "api_create_job.json": 201,
    "api_list_jobs.json": 200,
    "api_get_job.json": 200,
    "api_cancel_job.json": 200,
    "api_download_job.json": 200,
    "api_file_by_link.json": 302,
    "api_job_history.json": 200,
    "api_create_reexport.json": 202,
    "api_list_reexports.json": 200,
    "api_get_reexport.json": 200,
    "api_update_reexport.json": 200,
    "api_cancel_reexport.json": 200,
    "api_create_schedule.json": 201,
    "api_list_schedules.json": 200,
    "api_get_schedule.json": 200,
    "api_update_schedule.json": 200,
    "api_delete_schedule.json": 204,
    "api_place_legal_hold.json": 200,
    "api_lift_legal_hold.json": 204,
    "api_create_subscription.json": 201,
    "api_list_subscriptions.json": 200,
    "api_get_subscription.json": 200,
    "api_delete_subscription.json": 204,
    "api_list_report_types.json": 200,
    "api_get_report_type.json": 200,
}
# Events about the finished sample report rather than the queued sample job.
DOWNLOAD_EVENTS = {
    "api_download_job.json",
    "api_file_by_link.json",
    "api_create_reexport.json",
    "api_place_legal_hold.json",
    "api_lift_legal_hold.json",
}
# Events about the sample re-export (of the finished sample report).
REEXPORT_EVENTS = {
    "api_list_reexports.json",
    "api_get_reexport.json",
    "api_update_reexport.json",
    "api_cancel_reexport.json",
}
# Events about the sample schedule.
SCHEDULE_EVENTS = {
    "api_list_schedules.json",
    "api_get_schedule.json",
    "api_update_schedule.json",
    "api_delete_schedule.json",
}
# Events about the sample notice subscription.
SUBSCRIPTION_EVENTS = {"api_list_subscriptions.json", "api_get_subscription.json", "api_delete_subscription.json"}
SAMPLE_SUBSCRIPTION_ID = "019a8f16-1a2b-7c3d-8e4f-5a6b7c8d9e0f"
SAMPLE_SCHEDULE_ID = "019a8f14-9e6f-7a72-8d8e-9f0a1b2c3d4e"
SAMPLE_REEXPORT_ID = "019a8f12-7d4e-7f50-9b6c-7d8e9f0a1b2c"
SAMPLE_REEXPORT_JOB_ID = "019a8f12-7d4f-7a61-8c7d-8e9f0a1b2c3d"
GENERATOR_EVENTS = ["generator_sqs_batch.json"]
SWEEPER_EVENTS = ["sweeper_schedule.json"]
SCHEDULED_EXPORT_EVENTS = ["scheduled_export_monthly.json", "scheduled_export_tenant_schedule.json"]


def test_every_sample_event_is_covered():
    assert sorted(path.name for path in EVENTS.glob("api_*.json")) == sorted(EXPECTED)
    assert sorted(path.name for path in EVENTS.glob("generator_*.json")) == sorted(GENERATOR_EVENTS)
    assert sorted(path.name for path in EVENTS.glob("sweeper_*.json")) == sorted(SWEEPER_EVENTS)
    assert sorted(path.name for path in EVENTS.glob("scheduled_export_*.json")) == sorted(SCHEDULED_EXPORT_EVENTS)
    every = [*EXPECTED, *GENERATOR_EVENTS, *SWEEPER_EVENTS, *SCHEDULED_EXPORT_EVENTS]
    assert sorted(path.name for path in EVENTS.glob("*.json")) == sorted(every)


@pytest.fixture
def sample_job(aws):
    """The job the get and cancel samples name, as the create route would have stored it."""
    created_at = now_utc()
    job = Job(
        id=SAMPLE_JOB_ID,
        tenant_id=SAMPLE_TENANT,
        requested_by="user-123",
        job_type=JobType.KPI_FEEDING_EXPORT,
        format="csv",
        status=JobStatus.QUEUED,
        created_at=created_at,
        updated_at=created_at,
    )
    put_job(aws, job, params_hash="sample")
    return job


@pytest.fixture
def ready_sample_job(aws):
    """The finished report the download samples name, its file in the bucket, and the samples' signing secret."""
    aws.ssm.put_parameter(
        Name=os.environ["SIGNING_SECRET_PARAMETER"], Type="SecureString", Value=SAMPLE_SIGNING_SECRET, Overwrite=True
    )
    secrets.reset()
    file_name = "kpi_feeding_export.csv"
    key = f"tenants/{SAMPLE_TENANT}/jobs/{SAMPLE_READY_JOB_ID}/1/{file_name}"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=SAMPLE_REPORT, ContentType="text/csv")
    finished_at = now_utc()
    job = Job(
        id=SAMPLE_READY_JOB_ID,
        tenant_id=SAMPLE_TENANT,
        requested_by="user-123",
        job_type=JobType.KPI_FEEDING_EXPORT,
        format="csv",
        status=JobStatus.SUCCEEDED,
        progress_pct=100,
        file_path=key,
        file_name=file_name,
        mime_type="text/csv",
        size_bytes=len(SAMPLE_REPORT),
        sha256=hashlib.sha256(SAMPLE_REPORT).hexdigest(),
        row_count=1,
        expires_at=finished_at + timedelta(days=90),
        created_at=finished_at,
        updated_at=finished_at,
    )
    put_job(aws, job, params_hash="sample")
    return job


@pytest.fixture
def sample_reexport(aws, ready_sample_job, monkeypatch):
    """The re-export the get, list, update and cancel samples name, requested as the API would (with its ids)."""
    ids = iter([uuid.UUID(SAMPLE_REEXPORT_ID), uuid.UUID(SAMPLE_REEXPORT_JOB_ID)])
    monkeypatch.setattr(reexport_requests_module, "uuid7", lambda: next(ids))
    principal = Principal(subject="user-123", tenant_id=SAMPLE_TENANT, roles=frozenset({"tenant_admin"}))
    # The file the update sample records: the report restored by an internal service, under its own key.
    restored = f"tenants/{SAMPLE_TENANT}/restored/kpi_feeding_export.csv"
    aws.s3.put_object(Bucket=aws.bucket, Key=restored, Body=SAMPLE_REPORT, ContentType="text/csv")
    return reexport_requests().reexport_report(principal, SAMPLE_READY_JOB_ID).record


@pytest.fixture
def sample_schedule(aws, monkeypatch):
    """The schedule the get, list, update and delete samples name, created as the API would (with its id)."""
    monkeypatch.setattr(schedule_service_module, "uuid7", lambda: uuid.UUID(SAMPLE_SCHEDULE_ID))
    principal = Principal(subject="user-123", tenant_id=SAMPLE_TENANT, roles=frozenset({"tenant_admin"}))
    request = json.loads(json.loads((EVENTS / "api_create_schedule.json").read_text())["body"])
    return schedule_service().create_schedule(principal, ScheduleSpec.model_validate(request))


@pytest.fixture
def sample_subscription(aws, monkeypatch):
    """The subscription the get, list and delete samples name, made as the API would (with its id)."""
    monkeypatch.setattr(subscription_service_module, "uuid7", lambda: uuid.UUID(SAMPLE_SUBSCRIPTION_ID))
    principal = Principal(subject="user-123", tenant_id=SAMPLE_TENANT, roles=frozenset({"tenant_admin"}))
    request = json.loads(json.loads((EVENTS / "api_create_subscription.json").read_text())["body"])
    return subscription_service().subscribe(principal, SubscriptionRequest.model_validate(request))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_event_runs_through_the_handler(api, sample_job, name, request):
    event = json.loads((EVENTS / name).read_text())
    if name in DOWNLOAD_EVENTS:
        request.getfixturevalue("ready_sample_job")
    if name in REEXPORT_EVENTS:
        request.getfixturevalue("sample_reexport")
    if name in SCHEDULE_EVENTS:
        request.getfixturevalue("sample_schedule")
    if name in SUBSCRIPTION_EVENTS:
        request.getfixturevalue("sample_subscription")
    if name == "api_lift_legal_hold.json":
        held = api.invoke(json.loads((EVENTS / "api_place_legal_hold.json").read_text()))
        assert held.status == 200, held.body

    response = api.invoke(event)

    assert response.status == EXPECTED[name], response.body
    if name == "api_get_job.json":
        assert response.json["id"] == SAMPLE_JOB_ID
    if name == "api_cancel_job.json":
        assert response.json["status"] == "cancelled"
    if name == "api_list_jobs.json":
        assert [item["id"] for item in response.json["items"]] == [SAMPLE_JOB_ID]
    if name == "api_download_job.json":
        assert requests.get(response.json["download_url"], timeout=5).content == SAMPLE_REPORT
    if name == "api_file_by_link.json":
        assert requests.get(response.headers["location"], timeout=5).content == SAMPLE_REPORT
    if name == "api_job_history.json":
        assert [(entry["job_id"], entry["event"]) for entry in response.json["items"]] == [(SAMPLE_JOB_ID, "created")]
    if name == "api_create_reexport.json":
        assert (response.json["report_id"], response.json["status"]) == (SAMPLE_READY_JOB_ID, "pending")
    if name in {"api_get_reexport.json", "api_cancel_reexport.json", "api_update_reexport.json"}:
        assert response.json["id"] == SAMPLE_REEXPORT_ID
    if name == "api_list_reexports.json":
        assert [item["id"] for item in response.json["items"]] == [SAMPLE_REEXPORT_ID]
    if name == "api_update_reexport.json":
        assert (response.json["status"], response.json["matches_original"]) == ("succeeded", True)
    if name == "api_cancel_reexport.json":
        assert response.json["status"] == "cancelled"
    if name == "api_create_schedule.json":
        assert (response.json["export"]["period"], response.json["version"]) == ("previous_month", 1)
    if name in {"api_get_schedule.json", "api_update_schedule.json"}:
        assert response.json["id"] == SAMPLE_SCHEDULE_ID
    if name == "api_list_schedules.json":
        assert [item["id"] for item in response.json["items"]] == [SAMPLE_SCHEDULE_ID]
    if name == "api_update_schedule.json":
        assert (response.json["enabled"], response.json["version"]) == (False, 2)
    if name == "api_create_subscription.json":
        assert (response.json["endpoint"], response.json["statuses"]) == (
            "reports@farm.example",
            ["failed", "succeeded"],
        )
    if name == "api_place_legal_hold.json":
        assert [file["job_id"] for file in response.json["files"]] == [SAMPLE_READY_JOB_ID]
    if name == "api_lift_legal_hold.json":
        assert job_service().get_job_of_tenant(SAMPLE_TENANT, SAMPLE_READY_JOB_ID).legal_hold is None
    if name == "api_get_subscription.json":
        assert response.json["id"] == SAMPLE_SUBSCRIPTION_ID
    if name == "api_list_subscriptions.json":
        assert [item["id"] for item in response.json["items"]] == [SAMPLE_SUBSCRIPTION_ID]
    if name == "api_list_report_types.json":
        assert [item["job_type"] for item in response.json["items"]] == list(REPORT_DEFINITIONS)
    if name == "api_get_report_type.json":
        assert (response.json["job_type"], response.json["title"]) == (
            "BUFDIR_ACTIVITY_REPORT",
            "Activity report to Bufdir",
        )


def generator_handler():
    from generator.handler import lambda_handler

    return lambda_handler


def sample_sqs_event():
    return json.loads((EVENTS / "generator_sqs_batch.json").read_text())


def test_the_generator_sample_names_the_sample_job():
    [record] = sample_sqs_event()["Records"]

    assert json.loads(record["body"]) == {"tenant_id": SAMPLE_TENANT, "job_id": SAMPLE_JOB_ID}
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()


def test_the_generator_sample_generates_the_queued_sample_job(aws, sample_job):
    response = generator_handler()(sample_sqs_event(), LambdaContextStub(function_name="report-export-generator"))

    assert response == {"batchItemFailures": []}
    assert [execution["status"] for execution in aws.wait_for_executions()] == ["SUCCEEDED"]
    stored = job_service().get_job_of_tenant(SAMPLE_TENANT, SAMPLE_JOB_ID)
    assert stored.status is JobStatus.SUCCEEDED
    body = aws.s3.get_object(Bucket=aws.bucket, Key=stored.file_path)["Body"].read()
    assert hashlib.sha256(body).hexdigest() == stored.sha256


def test_the_generator_sample_for_a_job_that_does_not_exist_is_acknowledged_without_work(aws):
    response = generator_handler()(sample_sqs_event(), LambdaContextStub(function_name="report-export-generator"))

    assert response == {"batchItemFailures": []}
    assert aws.job_items(SAMPLE_TENANT) == []
    assert aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"] == []
    assert aws.s3.list_objects_v2(Bucket=aws.bucket).get("KeyCount") == 0


def test_a_record_that_is_not_a_wake_up_fails_alone(aws, sample_job):
    event = sample_sqs_event()
    [record] = event["Records"]
    broken = {**record, "messageId": "broken-1", "body": "not a wake-up"}
    event["Records"] = [broken, record]

    response = generator_handler()(event, LambdaContextStub(function_name="report-export-generator"))

    assert response == {"batchItemFailures": [{"itemIdentifier": "broken-1"}]}
    aws.wait_for_executions()
    assert job_service().get_job_of_tenant(SAMPLE_TENANT, SAMPLE_JOB_ID).status is JobStatus.SUCCEEDED


def test_the_sweeper_sample_runs_a_sweep_that_wakes_a_forgotten_queued_job(aws, sample_job):
    from sweeper.handler import lambda_handler

    aws.receive_all(aws.queue_url)  # the sample job has no wake-up queued: as if it had been lost
    forget_when_the_job_was_queued(aws, SAMPLE_TENANT, SAMPLE_JOB_ID)

    result = lambda_handler(json.loads((EVENTS / "sweeper_schedule.json").read_text()), LambdaContextStub())

    assert result == {"requeued": 0, "failed": 0, "woken": 1, "dead_letters": 0, "schedules_repaired": 0}
    assert aws.queued_messages() == [{"tenant_id": SAMPLE_TENANT, "job_id": SAMPLE_JOB_ID}]


def test_the_scheduled_export_sample_makes_last_months_job_for_the_sample_tenant(aws):
    from scheduled_export.handler import lambda_handler

    event = json.loads((EVENTS / "scheduled_export_monthly.json").read_text())

    made = lambda_handler(event, LambdaContextStub())

    assert (made["start_date"], made["end_date"], made["replayed"]) == ("2026-02-01", "2026-02-28", False)
    assert aws.queued_messages() == [{"tenant_id": SAMPLE_TENANT, "job_id": made["job_id"]}]


def test_the_tenant_schedule_sample_fires_the_sample_schedule(aws, sample_schedule):
    from scheduled_export.handler import lambda_handler

    event = json.loads((EVENTS / "scheduled_export_tenant_schedule.json").read_text())

    made = lambda_handler(event, LambdaContextStub())

    assert (made["start_date"], made["end_date"], made["replayed"]) == ("2026-02-01", "2026-02-28", False)
    assert aws.queued_messages() == [{"tenant_id": SAMPLE_TENANT, "job_id": made["job_id"]}]
