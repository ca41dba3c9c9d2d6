import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import valid_job_request

JOBS = "/api/v1/reports/jobs"
CONTRACT_COLUMNS = {
    "id", "tenant_id", "requested_by", "job_type", "format", "farm_id", "barn_id", "batch_id", "start_date",
    "end_date", "filters", "status", "progress_pct", "file_path", "file_name", "mime_type", "size_bytes", "sha256",
    "expires_at", "error_code", "error_message", "idempotency_key", "created_at", "updated_at",
}  # fmt: skip
SERVICE_ADDITIONS = {
    "compression", "row_count", "cancel_requested", "phase", "rows_written", "started_at", "notification_sent_at",
    "manifest", "reexport_id", "reexport_of", "active_reexport_id", "schedule_id", "legal_hold",
}  # fmt: skip


def test_create_answers_201_with_the_whole_queued_job_and_wakes_the_generator(api, aws):
    response = api.create_job(valid_job_request(idempotency_key="export-jan-2025"), sub="user-123")

    assert response.status == 201
    job = response.json
    assert set(job) == CONTRACT_COLUMNS | SERVICE_ADDITIONS
    assert uuid.UUID(job["id"]).version == 7
    assert response.headers["location"] == f"{JOBS}/{job['id']}"
    assert job | {"id": None, "created_at": None, "updated_at": None} == {
        "id": None,
        "tenant_id": "tenant-a",
        "requested_by": "user-123",
        "job_type": "FEED_INTAKE_EXPORT",
        "format": "csv",
        "compression": None,
        "farm_id": "018f1a84-bb0e-7d3f-b2e4-9e8b5f8e0002",
        "barn_id": None,
        "batch_id": None,
        "start_date": "2025-01-01",
        "end_date": "2025-01-31",
        "filters": {"source": "MANUAL"},
        "status": "queued",
        "progress_pct": 0,
        "file_path": None,
        "file_name": None,
        "mime_type": None,
        "size_bytes": None,
        "sha256": None,
        "row_count": None,
        "expires_at": None,
        "error_code": None,
        "error_message": None,
        "idempotency_key": "export-jan-2025",
        "cancel_requested": False,
        "phase": None,
        "rows_written": None,
        "started_at": None,
        "notification_sent_at": None,
        "manifest": None,
        "reexport_id": None,
        "reexport_of": None,
        "active_reexport_id": None,
        "schedule_id": None,
        "legal_hold": None,
        "created_at": None,
        "updated_at": None,
    }
    assert job["created_at"] == job["updated_at"]
    assert job["created_at"].endswith("Z") and len(job["created_at"]) == len("2025-02-04T12:00:00.000Z")
    assert aws.queued_messages() == [{"tenant_id": "tenant-a", "job_id": job["id"]}]
    assert api.call("GET", f"{JOBS}/{job['id']}").json == job


def test_job_ids_are_time_ordered(api):
    first = api.create_job().json["id"]
    second = api.create_job().json["id"]

    assert first < second


def test_filters_keep_their_types(api):
    filters = {"source": "MANUAL", "min_weight": 1.25, "top": 3, "include_test": False, "houses": ["h1", "h2"]}

    created = api.create_job(valid_job_request(filters=filters)).json

    assert created["filters"] == filters
    assert api.call("GET", f"{JOBS}/{created['id']}").json["filters"] == filters


def test_the_tenant_always_comes_from_the_token(api, aws):
    same = api.create_job(valid_job_request(tenant_id="tenant-a"))
    other = api.create_job(valid_job_request(tenant_id="tenant-b"))

    assert same.status == 201 and same.json["tenant_id"] == "tenant-a"
    assert other.status == 403 and other.error_code == "FORBIDDEN"
    assert len(aws.job_items("tenant-b")) == 0
    assert len(aws.job_items("tenant-a")) == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (valid_job_request(start_date="2025-02-01", end_date="2025-01-31"), "end_date must be on or after start_date"),
        (valid_job_request(end_date=None), "start_date and end_date must be given together"),
        (valid_job_request(start_date="01/01/2025"), "start_date: must be a date in the form YYYY-MM-DD"),
        # Forms Python's fromisoformat also reads: an ISO week date, basic forms, non-ASCII digits.
        (valid_job_request(start_date="2025-W01-1"), "start_date: must be a date in the form YYYY-MM-DD"),
        (valid_job_request(end_date="2025W051"), "end_date: must be a date in the form YYYY-MM-DD"),
        (valid_job_request(start_date="20250101"), "start_date: must be a date in the form YYYY-MM-DD"),
        (valid_job_request(start_date="\uff12025-01-01"), "start_date: must be a date in the form YYYY-MM-DD"),
        (valid_job_request(start_date="2024-01-01", end_date="2025-01-01"), "must not exceed 366 days"),
        (valid_job_request(job_type="PAYROLL"), "job_type: Input should be"),
        (valid_job_request(format="xlsx"), "format: Input should be 'csv' or 'json'"),
        (valid_job_request(farm_id="a" * 100), "farm_id: String should match pattern"),
        (valid_job_request(idempotency_key="no spaces allowed"), "idempotency_key: String should match pattern"),
        (valid_job_request(filters={f"k{index}": index for index in range(25)}), "at most 20 filters"),
        (valid_job_request(filters={"big": ["y" * 256] * 20}), "filters must not exceed 4096 bytes"),
        (valid_job_request(tenant="x", owner="y"), "unknown field"),
        ({"format": "csv"}, "job_type: Field required"),
        ([valid_job_request(), valid_job_request(job_type="KPI_FEEDING_EXPORT")], "must be a JSON object"),
        ([], "must be a JSON object"),
    ],
)
def test_invalid_bodies_get_400_validation_error_and_nothing_is_written(api, aws, body, fragment):
    response = api.create_job(body)

    assert response.status == 400
    assert response.json["error"]["code"] == "VALIDATION_ERROR"
    assert fragment in response.json["error"]["message"]
    assert response.json["error"]["traceId"].startswith("req-")
    assert aws.job_items("tenant-a") == []
    assert aws.queued_messages() == []


@pytest.mark.parametrize(
    ("raw_body", "fragment"),
    [("{not json", "not valid JSON"), ("", "request body is required"), ('"text"', "must be a JSON object")],
)
def test_unparseable_bodies_get_400(api, aws, raw_body, fragment):
    response = api.call("POST", JOBS, raw_body=raw_body)

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert fragment in response.json["error"]["message"]


def test_validation_messages_do_not_echo_what_was_sent(api):
    probe = "<script>alert(1)</script>"

    response = api.create_job(valid_job_request(format=probe, farm_id=probe, start_date=probe))

    assert response.status == 400
    assert probe not in response.body


def test_same_key_and_parameters_replays_the_job_without_a_second_message(api, aws):
    body = valid_job_request(idempotency_key="monthly:2025-01")
    first = api.create_job(body)

    replay = api.create_job(dict(reversed(list(body.items()))), sub="someone-else")

    assert (first.status, replay.status) == (201, 200)
    assert replay.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert replay.json == first.json
    assert len(aws.job_items("tenant-a")) == 1
    assert len(aws.queued_messages()) == 1


def test_same_key_with_other_parameters_is_a_conflict(api, aws):
    api.create_job(valid_job_request(idempotency_key="k-1"))

    response = api.create_job(valid_job_request(idempotency_key="k-1", end_date="2025-01-30"))

    assert (response.status, response.error_code) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert len(aws.job_items("tenant-a")) == 1


def test_a_key_used_once_stays_used_after_the_job_is_cancelled(api):
    created = api.create_job(valid_job_request(idempotency_key="k-2")).json
    api.call("DELETE", f"{JOBS}/{created['id']}")

    replay = api.create_job(valid_job_request(idempotency_key="k-2"))

    assert replay.status == 200
    assert replay.json["id"] == created["id"]
    assert replay.json["status"] == "cancelled"


def test_idempotency_keys_are_scoped_to_the_tenant(api, aws):
    one = api.create_job(valid_job_request(idempotency_key="shared-key"), tenant="tenant-a")
    two = api.create_job(valid_job_request(idempotency_key="shared-key"), tenant="tenant-b")

    assert (one.status, two.status) == (201, 201)
    assert one.json["id"] != two.json["id"]
    assert two.json["tenant_id"] == "tenant-b"


def test_twenty_concurrent_creates_with_one_key_make_one_job_and_one_message(serialized_aws):
    from conftest import ApiClient

    api = ApiClient()
    body = valid_job_request(idempotency_key="race-key")

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda index: api.create_job(body, sub=f"user-{index}"), range(20)))

    statuses = sorted(response.status for response in responses)
    assert statuses == [200] * 19 + [201]
    assert len({response.json["id"] for response in responses}) == 1
    assert len(serialized_aws.job_items("tenant-a")) == 1
    assert len(serialized_aws.queued_messages()) == 1


def test_without_a_key_every_create_is_a_new_job(api, aws):
    ids = {api.create_job().json["id"] for _ in range(3)}

    assert len(ids) == 3
    assert len(aws.queued_messages()) == 3


def test_a_queue_failure_keeps_the_job_queued_and_the_client_gets_it(api, aws, caplog):
    aws.sqs.delete_queue(QueueUrl=aws.queue_url)

    response = api.create_job()

    assert response.status == 201
    job_id = response.json["id"]
    assert api.call("GET", f"{JOBS}/{job_id}").json["status"] == "queued"
    failures = [record for record in caplog.records if record.getMessage() == "Could not queue the job for generation"]
    assert [getattr(record, "job_id", None) for record in failures] == [job_id]
    assert failures[0].exc_info is not None
