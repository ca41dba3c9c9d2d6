"""Every sample event in events/ is fed to its handler (the same files serve `sam local invoke`)."""

import json
from pathlib import Path

import pytest

from report_export.jobs import job_service
from report_export.models import Job, JobStatus, JobType, now_utc

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLE_JOB_ID = "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f"
SAMPLE_TENANT = "018f1a84-bb0e-7d3f-b2e4-9e8b5f8e0001"

EXPECTED = {
    "api_health.json": 200,
    "api_ready.json": 200,
    "api_docs.json": 200,
    "api_openapi_json.json": 200,
    "api_create_job.json": 201,
    "api_list_jobs.json": 200,
    "api_get_job.json": 200,
    "api_cancel_job.json": 200,
}


def test_every_sample_event_is_covered():
    assert sorted(path.name for path in EVENTS.glob("api_*.json")) == sorted(EXPECTED)


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
    job_service()._store.create_job(job, params_hash="sample")
    return job


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_event_runs_through_the_handler(api, sample_job, name):
    event = json.loads((EVENTS / name).read_text())

    response = api.invoke(event)

    assert response.status == EXPECTED[name], response.body
    if name == "api_get_job.json":
        assert response.json["id"] == SAMPLE_JOB_ID
    if name == "api_cancel_job.json":
        assert response.json["status"] == "cancelled"
    if name == "api_list_jobs.json":
        assert [item["id"] for item in response.json["items"]] == [SAMPLE_JOB_ID]
