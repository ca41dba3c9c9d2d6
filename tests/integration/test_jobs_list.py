import pytest

from report_export.aws import clients
from report_export.aws.dynamo.updates import versioned_update
from report_export.core.models.common import JobStatus

from conftest import valid_job_request
from support.tables import job_repository

JOBS = "/api/v1/reports/jobs"
TYPES = ["FEED_INTAKE_EXPORT", "KPI_FEEDING_EXPORT", "TELEMETRY_EXPORT", "WEIGHVISION_EXPORT"]


def create_jobs(api, count, **overrides):
    return [api.create_job(valid_job_request(**overrides)).json["id"] for _ in range(count)]


def set_status(tenant, job_id, status):
    """Move a job as the generator will (the jobs API itself only queues and cancels)."""
    jobs = job_repository()
    stored = jobs.get(tenant, job_id, consistent=True)
    return jobs.apply(versioned_update(stored, expected_status=stored.job.status, changes={"status": status}))


def test_lists_newest_first_in_full_pages_until_the_cursor_is_null(api):
    ids = create_jobs(api, 25)

    pages = api.read_all_pages(JOBS, limit=10)

    assert [len(page) for page in pages] == [10, 10, 5]
    assert [job_id for page in pages for job_id in page] == list(reversed(ids))


def test_an_exact_multiple_of_the_page_size_ends_without_an_empty_page(api):
    create_jobs(api, 6)

    assert [len(page) for page in api.read_all_pages(JOBS, limit=3)] == [3, 3]


def test_default_limit_is_20_and_items_are_whole_jobs(api):
    ids = create_jobs(api, 21)

    response = api.call("GET", JOBS, roles="[viewer]")

    assert response.status == 200
    assert len(response.json["items"]) == 20
    assert response.json["next_cursor"] is not None
    assert response.json["items"][0] == api.call("GET", f"{JOBS}/{ids[-1]}").json


def test_an_empty_tenant_gets_an_empty_page(api):
    response = api.call("GET", JOBS, tenant="tenant-empty", roles="[viewer]")

    assert response.status == 200
    assert response.json == {"items": [], "next_cursor": None}


def test_filter_by_status_returns_full_pages_even_when_matches_are_sparse(api):
    ids = create_jobs(api, 30)
    failed = ids[::6]  # 5 failed jobs spread among 25 others
    for job_id in failed:
        set_status("tenant-a", job_id, JobStatus.FAILED)

    pages = api.read_all_pages(JOBS, limit=2, status="failed")

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [job_id for page in pages for job_id in page] == list(reversed(failed))


def test_filter_by_type(api):
    by_type = {job_type: [] for job_type in TYPES}
    for index in range(12):
        job_type = TYPES[index % 4]
        by_type[job_type].append(api.create_job(valid_job_request(job_type=job_type)).json["id"])

    pages = api.read_all_pages(JOBS, limit=2, job_type="TELEMETRY_EXPORT")

    assert [job_id for page in pages for job_id in page] == list(reversed(by_type["TELEMETRY_EXPORT"]))
    assert [len(page) for page in pages] == [2, 1]


def test_both_filters_fill_pages_across_many_non_matching_jobs(api):
    wanted = []
    for index in range(40):
        job_type = "WEIGHVISION_EXPORT" if index % 8 == 0 else "FEED_INTAKE_EXPORT"
        job_id = api.create_job(valid_job_request(job_type=job_type)).json["id"]
        if index % 2 == 0:
            set_status("tenant-a", job_id, JobStatus.SUCCEEDED)
            if job_type == "WEIGHVISION_EXPORT":
                wanted.append(job_id)

    pages = api.read_all_pages(JOBS, limit=3, status="succeeded", job_type="WEIGHVISION_EXPORT")

    assert [job_id for page in pages for job_id in page] == list(reversed(wanted))
    assert [len(page) for page in pages] == [3, 2]


def test_a_job_that_changes_status_moves_between_filtered_lists(api):
    job_id = create_jobs(api, 1)[0]

    api.call("DELETE", f"{JOBS}/{job_id}")

    assert api.call("GET", JOBS, query={"status": "queued"}).json["items"] == []
    assert [item["id"] for item in api.call("GET", JOBS, query={"status": "cancelled"}).json["items"]] == [job_id]


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"status": "done"}, {"job_type": "payroll"}],
)
def test_invalid_query_parameters_get_400(api, query):
    response = api.call("GET", JOBS, query=query)

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")


def test_a_tampered_cursor_gets_400(api):
    create_jobs(api, 3)
    cursor = api.call("GET", JOBS, query={"limit": 1}).json["next_cursor"]
    payload, signature = cursor.split(".")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]

    for bad in [f"{tampered}.{signature}", cursor + "x", "not-a-cursor", "x" * 2000, f"{payload}.é"]:
        response = api.call("GET", JOBS, query={"limit": 1, "next_cursor": bad})
        assert response.status == 400, bad
        assert response.error_code in {"INVALID_CURSOR", "VALIDATION_ERROR"}
    assert api.call("GET", JOBS, query={"limit": 1, "next_cursor": cursor}).status == 200


def test_a_cursor_only_continues_the_query_it_came_from(api):
    create_jobs(api, 3)
    cursor = api.call("GET", JOBS, query={"limit": 1}).json["next_cursor"]

    other_filter = api.call("GET", JOBS, query={"limit": 1, "next_cursor": cursor, "status": "queued"})
    other_tenant = api.call("GET", JOBS, query={"limit": 1, "next_cursor": cursor}, tenant="tenant-b")

    assert (other_filter.status, other_filter.error_code) == (400, "INVALID_CURSOR")
    assert (other_tenant.status, other_tenant.error_code) == (400, "INVALID_CURSOR")


def test_listing_never_scans_the_table(api, aws, monkeypatch):
    create_jobs(api, 3)
    client = clients.dynamodb()
    calls = []
    for operation in ("scan", "query"):
        original = getattr(client, operation)
        monkeypatch.setattr(
            client, operation, lambda *a, _op=operation, _orig=original, **kw: calls.append(_op) or _orig(*a, **kw)
        )

    for query in [{}, {"status": "queued"}, {"job_type": "FEED_INTAKE_EXPORT"}, {"status": "queued", "job_type": "x"}]:
        api.call("GET", JOBS, query=query)

    assert "scan" not in calls
    assert calls.count("query") >= 3


def test_expired_filters_by_whether_the_file_is_still_kept_and_pages_fully(api, aws):
    past, future = "2020-01-01T00:00:00.000Z", "2099-01-01T00:00:00.000Z"
    ids = create_jobs(api, 7)
    expires = {job_id: (past if index % 2 == 0 else future) for index, job_id in enumerate(ids[:6])}
    for job_id, moment in expires.items():  # the seventh has no file and never expires
        aws.dynamodb.update_item(
            TableName=aws.table_name,
            Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{job_id}"}},
            UpdateExpression="SET expires_at = :at",
            ExpressionAttributeValues={":at": {"S": moment}},
        )

    expired = api.read_all_pages(JOBS, limit=2, expired="true")
    kept = api.read_all_pages(JOBS, limit=2, expired="false")
    queued_and_expired = api.read_all_pages(JOBS, limit=5, expired="true", status="queued")

    assert [job_id for page in expired for job_id in page] == [j for j in reversed(ids) if expires.get(j) == past]
    assert [len(page) for page in expired] == [2, 1]
    assert [job_id for page in kept for job_id in page] == [j for j in reversed(ids) if expires.get(j) != past]
    assert [job_id for page in queued_and_expired for job_id in page] == [
        j for j in reversed(ids) if expires.get(j) == past
    ]
    assert api.call("GET", JOBS, query={"expired": "sometimes"}).error_code == "VALIDATION_ERROR"
