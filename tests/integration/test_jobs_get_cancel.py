import pytest

from report_export.aws import clients
from report_export.aws.dynamo.table import StaleWrite
from report_export.aws.dynamo.updates import versioned_update
from report_export.core.models.common import JobStatus

from support.tables import job_repository

JOBS = "/api/v1/reports/jobs"


def move_to(job_id, *statuses, tenant="tenant-a"):
    """Advance a job the way the generator will (queued → running → …)."""
    jobs = job_repository()
    for status in statuses:
        stored = jobs.get(tenant, job_id, consistent=True)
        jobs.apply(versioned_update(stored, expected_status=stored.job.status, changes={"status": status}))


def test_get_returns_the_job(api):
    created = api.create_job().json

    response = api.call("GET", f"{JOBS}/{created['id']}", roles="[house_operator]")

    assert response.status == 200
    assert response.json == created


@pytest.mark.parametrize(
    "job_id",
    ["019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f", "not-a-uuid", "019A8F0E-3A51-7C2E-9D41-4A0B5C6D7E8F", "x" * 64],
)
def test_unknown_or_malformed_ids_are_404(api, job_id):
    response = api.call("GET", f"{JOBS}/{job_id}")

    assert (response.status, response.error_code) == (404, "NOT_FOUND")


def test_an_overlong_id_is_rejected_before_it_reaches_the_table(api):
    response = api.call("GET", f"{JOBS}/{'x' * 2000}")

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")


def test_cancel_a_queued_job_cancels_it_at_once(api, aws):
    created = api.create_job().json

    response = api.call("DELETE", f"{JOBS}/{created['id']}", roles="[farm_manager]")

    assert response.status == 200
    assert response.json["status"] == "cancelled"
    assert response.json["updated_at"] >= created["updated_at"]
    item = aws.job_items("tenant-a")[0]
    assert item["version"] == {"N": "2"}
    assert item["GSI1PK"] == {"S": "TENANT#tenant-a#STATUS#cancelled"}


def test_cancel_a_running_job_records_the_request_for_the_generator(api):
    job_id = api.create_job().json["id"]
    move_to(job_id, JobStatus.RUNNING)

    first = api.call("DELETE", f"{JOBS}/{job_id}")
    again = api.call("DELETE", f"{JOBS}/{job_id}")

    assert first.status == 202
    assert (first.json["status"], first.json["cancel_requested"]) == ("running", True)
    assert again.status == 202
    assert api.call("GET", f"{JOBS}/{job_id}").json["cancel_requested"] is True


def test_cancelling_a_cancelled_job_is_harmless(api):
    job_id = api.create_job().json["id"]
    api.call("DELETE", f"{JOBS}/{job_id}")

    response = api.call("DELETE", f"{JOBS}/{job_id}")

    assert (response.status, response.json["status"]) == (200, "cancelled")


@pytest.mark.parametrize("final_status", [JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_a_finished_job_cannot_be_cancelled(api, final_status):
    job_id = api.create_job().json["id"]
    move_to(job_id, JobStatus.RUNNING, final_status)

    response = api.call("DELETE", f"{JOBS}/{job_id}")

    assert (response.status, response.error_code) == (409, "JOB_NOT_CANCELLABLE")
    assert final_status.value in response.json["error"]["message"]
    assert api.call("GET", f"{JOBS}/{job_id}").json["status"] == final_status.value


def test_cancel_of_an_unknown_job_is_404(api):
    response = api.call("DELETE", f"{JOBS}/019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f")

    assert (response.status, response.error_code) == (404, "NOT_FOUND")


def test_status_changes_are_conditional_on_version_and_status(api):
    job_id = api.create_job().json["id"]
    jobs = job_repository()
    stale = jobs.get("tenant-a", job_id, consistent=True)
    jobs.apply(versioned_update(stale, expected_status=JobStatus.QUEUED, changes={"status": JobStatus.RUNNING}))

    with pytest.raises(StaleWrite):
        jobs.apply(versioned_update(stale, expected_status=JobStatus.QUEUED, changes={"status": JobStatus.CANCELLED}))
    fresh = jobs.get("tenant-a", job_id, consistent=True)
    with pytest.raises(StaleWrite):
        jobs.apply(versioned_update(fresh, expected_status=JobStatus.QUEUED, changes={"status": JobStatus.CANCELLED}))
    assert jobs.get("tenant-a", job_id, consistent=True).job.status is JobStatus.RUNNING


def test_a_cancel_racing_the_generator_sees_the_job_it_started(api, monkeypatch):
    """The generator claims the job between the cancel's read and its write: the cancel retries
    against the running job and records cancel_requested instead of overwriting the claim."""
    job_id = api.create_job().json["id"]
    jobs = job_repository()
    client = clients.dynamodb()
    original_transact = client.transact_write_items
    raced = []

    def generator_claims_first(**kwargs):
        if not raced:
            raced.append(True)
            current = jobs.get("tenant-a", job_id, consistent=True)
            jobs.apply(
                versioned_update(current, expected_status=JobStatus.QUEUED, changes={"status": JobStatus.RUNNING})
            )
        return original_transact(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", generator_claims_first)

    response = api.call("DELETE", f"{JOBS}/{job_id}")

    assert response.status == 202
    assert (response.json["status"], response.json["cancel_requested"]) == ("running", True)
