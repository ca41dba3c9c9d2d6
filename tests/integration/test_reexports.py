"""POST, GET, list and DELETE /api/v1/report-reexports: the coordinator's contract, idempotency, the
race for one report, cancellation through the job's own cancel, and the report's history.

Originals are finished reports put straight into the table and bucket (the pipeline itself is
exercised in test_reexports_generation.py).
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from report_export.aws import clients
from report_export.aws.dynamo.updates import reexport_update, versioned_update

from conftest import ApiClient
from support.reexports import (
    JOBS,
    REEXPORTS,
    history,
    put_succeeded_report,
    reexport_items,
    run_worker,
)
from support.tables import job_repository, reexport_repository

UNKNOWN_ID = "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f"


@pytest.fixture
def report(aws):
    return put_succeeded_report(aws)


_CALL_OPTIONS = {"tenant", "roles", "sub", "authenticated"}


def request_reexport(api, report_id, **fields):
    """POST a re-export; tenant, roles and sub go to the token, every other keyword into the body."""
    call = {name: value for name, value in fields.items() if name in _CALL_OPTIONS}
    body = {name: value for name, value in fields.items() if name not in _CALL_OPTIONS}
    return api.call("POST", REEXPORTS, body={"report_id": report_id, **body}, **call)


def job(api, job_id, **kwargs):
    return api.call("GET", f"{JOBS}/{job_id}", **kwargs).json


# --- POST ----------------------------------------------------------------------------------------------------


def test_post_answers_202_with_a_pending_record_and_queues_the_job_that_regenerates_the_report(api, aws, report):
    response = request_reexport(api, report.id, reason="Auditor asked for the January file")

    assert response.status == 202, response.body
    record = response.json
    assert uuid.UUID(record["id"]).version == 7
    assert response.headers["location"] == f"{REEXPORTS}/{record['id']}"
    assert response.headers["etag"] == '"1"'
    original_parameters = {
        "job_type": "KPI_FEEDING_EXPORT",
        "format": "csv",
        "farm_id": "farm-1",
        "start_date": "2025-01-01",
        "end_date": "2025-01-31",
        "filters": {"source": "MANUAL"},
    }
    assert record | {"id": None, "job_id": None, "created_at": None, "updated_at": None} == {
        "id": None,
        "tenant_id": "tenant-a",
        "report_id": report.id,
        "job_id": None,
        "status": "pending",
        "requested_by": "user-1",
        "reason": "Auditor asked for the January file",
        "original_parameters": original_parameters,
        "effective_parameters": original_parameters,
        "overrides": None,
        "original_file": {
            "key": report.file_path,
            "file_name": report.file_name,
            "mime_type": "text/csv",
            "size_bytes": report.size_bytes,
            "sha256": report.sha256,
            "row_count": 1,
        },
        "new_file": None,
        "expires_at": None,
        "matches_original": None,
        "comparison": None,
        "changed_inputs": None,
        "error_code": None,
        "error_message": None,
        "cancel_requested": False,
        "created_at": None,
        "updated_at": None,
        "completed_at": None,
        "notification_sent_at": None,
        "version": 1,
        "download_url": None,
        "download_expires_at": None,
    }
    new_job = job(api, record["job_id"])
    assert new_job["status"] == "queued"
    assert (new_job["reexport_id"], new_job["reexport_of"], new_job["requested_by"]) == (
        record["id"],
        report.id,
        "user-1",
    )
    assert {name: new_job[name] for name in original_parameters} == original_parameters
    assert job(api, report.id)["active_reexport_id"] == record["id"]
    assert aws.queued_messages() == [{"tenant_id": "tenant-a", "job_id": record["job_id"]}]
    assert api.call("GET", f"{REEXPORTS}/{record['id']}").json == record


def test_the_request_is_in_the_history_of_the_report_and_of_the_new_job(api, report):
    record = request_reexport(api, report.id, reason="file lost").json

    [created, requested] = history(api, report.id)
    assert (created["event"], created["actor"]) == ("created", "author-1")
    assert (requested["event"], requested["actor"]) == ("reexport_requested", "user-1")
    assert requested["details"] == {"reexport_id": record["id"], "job_id": record["job_id"], "reason": "file lost"}
    [new_job_created] = history(api, record["job_id"])
    assert new_job_created["event"] == "created"
    assert new_job_created["details"] == {"reexport_id": record["id"], "reexport_of": report.id}


def test_overrides_change_the_effective_parameters_and_the_original_ones_are_kept(api, report):
    overrides = {
        "format": "json",
        "compression": "gzip",
        "filters": {"source": "AUTO", "houses": ["h1", "h2"]},
        "start_date": "2025-01-01",
        "end_date": "2025-01-15",
    }

    record = request_reexport(api, report.id, overrides=overrides).json

    assert record["original_parameters"]["format"] == "csv"
    assert record["original_parameters"]["filters"] == {"source": "MANUAL"}
    assert record["overrides"] == overrides
    assert record["effective_parameters"] == {
        "job_type": "KPI_FEEDING_EXPORT",
        "farm_id": "farm-1",
        **overrides,
    }
    new_job = job(api, record["job_id"])
    assert (new_job["format"], new_job["compression"], new_job["end_date"]) == ("json", "gzip", "2025-01-15")
    assert new_job["filters"] == {"source": "AUTO", "houses": ["h1", "h2"]}


def test_a_null_override_removes_filters_or_compression(api, aws):
    original = put_succeeded_report(aws, compression="gzip")

    record = request_reexport(api, original.id, overrides={"filters": None, "compression": None}).json

    assert record["original_parameters"]["compression"] == "gzip"
    assert "filters" not in record["effective_parameters"]
    assert "compression" not in record["effective_parameters"]
    new_job = job(api, record["job_id"])
    assert (new_job["filters"], new_job["compression"]) == (None, None)


INVALID_REQUESTS = [
    ({"overrides": {"start_date": "2025-02-01", "end_date": "2025-01-31"}}, "end_date must be on or after"),
    ({"overrides": {"start_date": "2025-01-05"}}, "start_date and end_date must be given together"),
    ({"overrides": {"start_date": "2024-01-01", "end_date": "2025-01-01"}}, "must not exceed 366 days"),
    ({"overrides": {"start_date": "01/01/2025", "end_date": "2025-01-31"}}, "must be a date in the form"),
    ({"overrides": {"format": "xlsx"}}, "overrides.format: Input should be 'csv' or 'json'"),
    ({"overrides": {"format": None}}, "format cannot be null"),
    ({"overrides": {"filters": {"tenant_id": "tenant-b"}}}, "tenant_id cannot be a filter"),
    ({"overrides": {"filters": {f"k{index}": index for index in range(25)}}}, "at most 20 filters"),
    ({"overrides": {"job_type": "TELEMETRY_EXPORT"}}, "overrides.job_type: unknown field"),
    ({"overrides": {"farm_id": "farm-2"}}, "overrides.farm_id: unknown field"),
    ({"reason": "x" * 501}, "reason: String should have at most 500 characters"),
    ({"reason": "bell\x07"}, "reason: String should match pattern"),
    ({"owner": "me"}, "owner: unknown field"),
    ({"report_id": "not-a-uuid"}, "report_id: String should match pattern"),
    ({"report_id": "../../etc"}, "report_id: String should match pattern"),
]


def test_invalid_requests_get_400_and_nothing_is_written(api, aws, report):
    # The cases run one after another in one emulated account: none writes, and a setup costs a second.
    for body, fragment in INVALID_REQUESTS:
        response = api.call("POST", REEXPORTS, body={"report_id": report.id, **body})

        assert (response.status, response.error_code) == (400, "VALIDATION_ERROR"), body
        assert fragment in response.json["error"]["message"], (body, response.json)
    assert reexport_items(aws) == []
    assert job(api, report.id)["active_reexport_id"] is None
    assert aws.queued_messages() == []


def test_original_parameters_that_are_no_longer_valid_must_be_corrected_with_overrides(api, aws):
    # Written before filters named like scope parameters were refused.
    original = put_succeeded_report(aws, filters={"sort": "desc"})

    refused = request_reexport(api, original.id)
    corrected = request_reexport(api, original.id, overrides={"filters": {"source": "MANUAL"}})

    assert (refused.status, refused.error_code) == (400, "VALIDATION_ERROR")
    assert "sort cannot be a filter" in refused.json["error"]["message"]
    assert corrected.status == 202


def test_a_report_that_never_succeeded_is_409_report_not_reexportable(api, aws):
    jobs = job_repository()
    for status in ["queued", "running", "failed", "cancelled"]:
        created = api.create_job().json
        stored = jobs.get("tenant-a", created["id"], consistent=True)
        jobs.apply(versioned_update(stored, expected_status=stored.job.status, changes={"status": status}))

        response = request_reexport(api, created["id"])

        assert (response.status, response.error_code) == (409, "REPORT_NOT_REEXPORTABLE"), status
        message = f"Only a report that succeeded can be re-exported; this one is {status}"
        assert response.json["error"]["message"] == message
    assert reexport_items(aws) == []


def test_another_tenants_report_and_an_unknown_one_are_404(api, aws, report):
    other = request_reexport(api, report.id, tenant="tenant-b")
    unknown = request_reexport(api, UNKNOWN_ID)

    for response in (other, unknown):
        assert (response.status, response.error_code) == (404, "NOT_FOUND")
        assert response.json["error"]["message"] == "Report not found"
    assert reexport_items(aws, "tenant-b") == []
    assert reexport_items(aws) == []


def test_a_second_request_while_one_is_pending_answers_that_one_without_a_second_history_entry(api, aws, report):
    first = request_reexport(api, report.id, reason="first")

    second = request_reexport(api, report.id, reason="second", overrides={"format": "json"}, sub="user-2")

    assert (first.status, second.status) == (202, 200)
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert second.json == first.json
    assert len(reexport_items(aws)) == 1
    assert [entry["event"] for entry in history(api, report.id)] == ["created", "reexport_requested"]
    assert len(aws.queued_messages()) == 1


def test_once_the_reexport_has_ended_the_report_can_be_reexported_again(api, aws, report):
    first = request_reexport(api, report.id).json
    assert api.call("DELETE", f"{REEXPORTS}/{first['id']}").status == 200

    again = request_reexport(api, report.id)

    assert again.status == 202
    assert again.json["id"] != first["id"]
    assert job(api, report.id)["active_reexport_id"] == again.json["id"]


def test_twenty_concurrent_requests_from_different_users_make_one_reexport(serialized_aws):
    report = put_succeeded_report(serialized_aws)
    api = ApiClient()

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(
            pool.map(lambda index: request_reexport(api, report.id, sub=f"user-{index}", reason=f"r{index}"), range(20))
        )

    assert sorted(response.status for response in responses) == [200] * 19 + [202]
    assert len({response.json["id"] for response in responses}) == 1
    [winner] = [response.json for response in responses if response.status == 202]
    [record] = reexport_items(serialized_aws)
    assert (record["id"], record["requested_by"]) == (winner["id"], winner["requested_by"])
    assert [item["id"]["S"] for item in serialized_aws.job_items("tenant-a")] == sorted([report.id, winner["job_id"]])
    assert serialized_aws.queued_messages() == [{"tenant_id": "tenant-a", "job_id": winner["job_id"]}]
    requested = [entry for entry in history(api, report.id) if entry["event"] == "reexport_requested"]
    assert [entry["actor"] for entry in requested] == [winner["requested_by"]]


def test_a_reexport_of_a_reexport_regenerates_the_second_file(api, aws, report):
    first = request_reexport(api, report.id).json
    jobs = job_repository()
    regenerated = jobs.get("tenant-a", first["job_id"], consistent=True)
    body = b"id,date,farm_id\r\nk-1,2025-01-01,farm-1\r\nk-2,2025-01-02,farm-1\r\n"
    key = f"tenants/tenant-a/jobs/{first['job_id']}/1/again.csv"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=body)
    jobs.apply(versioned_update(
        regenerated,
        expected_status=regenerated.job.status,
        changes={"status": "succeeded", "file_path": key, "file_name": "again.csv", "size_bytes": len(body),
                 "sha256": "ab" * 32, "row_count": 2},
    ))  # fmt: skip

    response = request_reexport(api, first["job_id"])

    assert response.status == 202
    assert response.json["report_id"] == first["job_id"]
    assert response.json["original_file"]["key"] == key
    assert job(api, response.json["job_id"])["reexport_of"] == first["job_id"]


# --- GET and list --------------------------------------------------------------------------------------------


def test_get_of_another_tenants_unknown_or_malformed_reexport_is_404(api, report):
    record = request_reexport(api, report.id).json

    for path, tenant in [(record["id"], "tenant-b"), (UNKNOWN_ID, "tenant-a"), ("not-an-id", "tenant-a")]:
        response = api.call("GET", f"{REEXPORTS}/{path}", tenant=tenant)
        assert (response.status, response.error_code) == (404, "NOT_FOUND")
        assert response.json["error"]["message"] == "Re-export not found"


def _finish(record_id, status):
    """Move a record as the pipeline would (the API never moves one to running or failed itself)."""
    reexports = reexport_repository()
    current = reexports.get("tenant-a", record_id, consistent=True)
    reexports.apply(
        reexport_update(
            "tenant-a", record_id, {"status": status}, condition="attribute_exists(PK)",
            condition_names={}, condition_values={},
        )
    )  # fmt: skip
    if status in ("failed", "succeeded", "cancelled"):
        clients.dynamodb().update_item(
            TableName=reexports.table.name,
            Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{current.record.report_id}"}},
            UpdateExpression="REMOVE active_reexport_id",
        )


def test_lists_newest_first_in_full_pages_and_filters_by_report_and_status(api, aws):
    reports = [put_succeeded_report(aws) for _ in range(3)]
    ids_by_report = {report.id: [] for report in reports}
    for _ in range(3):
        for report in reports:
            record_id = request_reexport(api, report.id).json["id"]
            ids_by_report[report.id].append(record_id)
            _finish(record_id, "failed")
    newest_first = sorted((rid for ids in ids_by_report.values() for rid in ids), reverse=True)
    _finish(ids_by_report[reports[1].id][-1], "succeeded")

    everything = api.read_all_pages(REEXPORTS, limit=4)
    of_one = api.read_all_pages(REEXPORTS, limit=2, report_id=reports[1].id)
    of_one_failed = api.read_all_pages(REEXPORTS, limit=1, report_id=reports[1].id, status="failed")
    succeeded = api.read_all_pages(REEXPORTS, limit=5, status="succeeded")

    assert [len(page) for page in everything] == [4, 4, 1]
    assert [rid for page in everything for rid in page] == newest_first
    assert [rid for page in of_one for rid in page] == list(reversed(ids_by_report[reports[1].id]))
    assert [rid for page in of_one_failed for rid in page] == list(reversed(ids_by_report[reports[1].id][:2]))
    assert succeeded == [[ids_by_report[reports[1].id][-1]]]


def test_a_list_cursor_is_bound_to_its_filters_and_tenant(api, aws, report):
    for _ in range(3):
        _finish(request_reexport(api, report.id).json["id"], "failed")
    cursor = api.call("GET", REEXPORTS, query={"limit": 1, "report_id": report.id}).json["next_cursor"]

    other_filter = api.call("GET", REEXPORTS, query={"limit": 1, "next_cursor": cursor})
    other_tenant = api.call(
        "GET", REEXPORTS, query={"limit": 1, "report_id": report.id, "next_cursor": cursor}, tenant="tenant-b"
    )
    forged = api.call("GET", REEXPORTS, query={"next_cursor": cursor[:-3] + "abc"})

    for response in (other_filter, other_tenant, forged):
        assert (response.status, response.error_code) == (400, "INVALID_CURSOR")


def test_invalid_list_parameters_are_400(api):
    for query in [{"status": "queued"}, {"report_id": "nope"}, {"limit": 0}, {"limit": 101}]:
        response = api.call("GET", REEXPORTS, query=query)

        assert (response.status, response.error_code) == (400, "VALIDATION_ERROR"), query


def test_tenants_see_only_their_own_reexports(api, aws, report):
    mine = request_reexport(api, report.id).json
    theirs = request_reexport(api, put_succeeded_report(aws, "tenant-b").id, tenant="tenant-b").json

    assert [item["id"] for item in api.call("GET", REEXPORTS).json["items"]] == [mine["id"]]
    assert [item["id"] for item in api.call("GET", REEXPORTS, tenant="tenant-b").json["items"]] == [theirs["id"]]
    filtered = api.call("GET", REEXPORTS, tenant="tenant-b", query={"report_id": report.id})
    assert filtered.json["items"] == []
    for method in ("GET", "DELETE"):
        response = api.call(method, f"{REEXPORTS}/{mine['id']}", tenant="tenant-b")
        assert (response.status, response.error_code) == (404, "NOT_FOUND")
    history_response = api.call("GET", f"{JOBS}/{report.id}/history", tenant="tenant-b")
    assert (history_response.status, history_response.error_code) == (404, "NOT_FOUND")
    assert api.call("GET", f"{REEXPORTS}/{mine['id']}").json["status"] == "pending"


# --- DELETE --------------------------------------------------------------------------------------------------


def test_cancelling_a_pending_reexport_cancels_its_job_and_releases_the_report(api, aws, report):
    record = request_reexport(api, report.id).json

    response = api.call("DELETE", f"{REEXPORTS}/{record['id']}", sub="canceller-9")

    assert response.status == 200, response.body
    cancelled = response.json
    assert (cancelled["status"], cancelled["version"]) == ("cancelled", 2)
    assert cancelled["completed_at"] is not None
    assert job(api, record["job_id"])["status"] == "cancelled"
    assert job(api, report.id)["active_reexport_id"] is None
    [*_, entry] = history(api, report.id)
    assert (entry["event"], entry["actor"]) == ("reexport_cancelled", "canceller-9")
    assert entry["details"] == {"reexport_id": record["id"], "job_id": record["job_id"], "while": "pending"}
    assert run_worker(aws) == []  # the wake-up finds nothing to do
    assert api.call("GET", f"{REEXPORTS}/{record['id']}").json["status"] == "cancelled"


def test_cancelling_the_regenerating_job_through_the_jobs_api_ends_the_reexport_too(api, report):
    record = request_reexport(api, report.id).json

    response = api.call("DELETE", f"{JOBS}/{record['job_id']}")

    assert (response.status, response.json["status"]) == (200, "cancelled")
    assert api.call("GET", f"{REEXPORTS}/{record['id']}").json["status"] == "cancelled"
    assert job(api, report.id)["active_reexport_id"] is None


def test_a_finished_reexport_cannot_be_cancelled(api, report):
    for status in ["succeeded", "failed", "cancelled"]:
        record = request_reexport(api, report.id).json
        _finish(record["id"], status)

        response = api.call("DELETE", f"{REEXPORTS}/{record['id']}")

        assert (response.status, response.error_code) == (409, "REEXPORT_NOT_CANCELLABLE"), status
        message = f"The re-export has already {status} and can no longer be cancelled"
        assert response.json["error"]["message"] == message
        assert api.call("GET", f"{REEXPORTS}/{record['id']}").json["status"] == status


def test_a_reports_history_records_creation_and_each_download_url_and_pages_oldest_first(api, aws):
    report = put_succeeded_report(aws)
    for reader in ("reader-1", "reader-2"):
        assert api.call("GET", f"{JOBS}/{report.id}/download", roles="[viewer]", sub=reader).status == 200
    other = put_succeeded_report(aws)

    pages, cursor = [], None
    while True:
        response = api.call("GET", f"{JOBS}/{report.id}/history", query={"limit": 1, "next_cursor": cursor})
        assert response.status == 200, response.body
        pages.append(response.json["items"])
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
    foreign = api.call("GET", f"{JOBS}/{other.id}/history", query={"next_cursor": _cursor(api, report.id)})

    entries = [entry for page in pages for entry in page]
    assert [len(page) for page in pages] == [1, 1, 1]
    assert [(entry["job_id"], entry["event"], entry["actor"]) for entry in entries] == [
        (report.id, "created", "author-1"),
        (report.id, "download_url_issued", "reader-1"),
        (report.id, "download_url_issued", "reader-2"),
    ]
    assert entries[1]["details"]["via"] == "api" and entries[1]["details"]["expires_at"].endswith("Z")
    assert [entry["id"] for entry in entries] == sorted(entry["id"] for entry in entries)
    assert all(uuid.UUID(entry["id"]).version == 7 for entry in entries)
    assert (foreign.status, foreign.error_code) == (400, "INVALID_CURSOR")


def _cursor(api, job_id):
    return api.call("GET", f"{JOBS}/{job_id}/history", query={"limit": 1}).json["next_cursor"]


def test_a_request_that_keeps_colliding_backs_off_with_jitter_and_gets_through(api, aws, report, monkeypatch):
    import types

    from botocore.exceptions import ClientError

    from report_export.reexports import requests as reexport_requests_module

    client = clients.dynamodb()
    real_transact = client.transact_write_items
    collisions = {"left": 4}
    waits = []

    def collide(**kwargs):
        # Other users' transactions on the same report cancel this one (TransactionConflict), four times running.
        if collisions["left"]:
            collisions["left"] -= 1
            error = {"Error": {"Code": "TransactionCanceledException", "Message": "TransactionConflict"}}
            raise ClientError(error, "TransactWriteItems")
        return real_transact(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", collide)
    monkeypatch.setattr(reexport_requests_module, "time", types.SimpleNamespace(sleep=waits.append))

    response = request_reexport(api, report.id)

    assert response.status == 202, response.body
    assert len(waits) == 4 and all(0 <= wait <= 0.5 for wait in waits)
    assert len(set(waits)) > 1  # jittered, not a fixed pause


def test_cancelling_the_running_regenerating_job_through_the_jobs_api_marks_the_reexport_too(api, aws, report):
    record = request_reexport(api, report.id).json
    job_repository().claim(
        "tenant-a", record["job_id"], now="2030-01-01T00:00:00.000Z", lease_until="2030-01-01T00:10:00.000Z"
    )
    reexport_repository().mark_running("tenant-a", record["id"], now="2030-01-01T00:00:00.000Z")

    response = api.call("DELETE", f"{JOBS}/{record['job_id']}")

    assert (response.status, response.json["cancel_requested"]) == (202, True)
    marked = api.call("GET", f"{REEXPORTS}/{record['id']}").json
    assert (marked["status"], marked["cancel_requested"]) == ("running", True)
    again = api.call("DELETE", f"{REEXPORTS}/{record['id']}")
    assert (again.status, again.json["cancel_requested"], again.json["version"]) == (202, True, marked["version"])
