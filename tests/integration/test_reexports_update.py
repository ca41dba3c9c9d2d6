"""PUT /api/v1/report-reexports/{id}: an internal service stores a re-export's result file or has its
completion announced, at the version it read (optimistic locking); any other move is refused."""

from __future__ import annotations

import hashlib

import pytest

from report_export.aws import clients
from report_export.aws.dynamo.table import StaleWrite
from report_export.core.settings import get_settings
from report_export.reexports.results import reexport_results

from support.events import claims_for, http_event
from support.reexports import JOBS, REEXPORTS, REPORT_BODY, history, put_succeeded_report, run_worker
from support.tables import job_repository

INTERNAL = "[internal_service]"


@pytest.fixture
def report(aws):
    return put_succeeded_report(aws)


@pytest.fixture
def pending(api, report):
    response = api.call("POST", REEXPORTS, body={"report_id": report.id, "reason": "restore"})
    assert response.status == 202
    return response.json


def stored_file(aws, body=REPORT_BODY, key="tenants/tenant-a/restored/kpi_feeding.csv"):
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=body, ContentType="text/csv")
    rows = body.count(b"\r\n") - 1  # the header line is not a row (no cell of these files holds a line break)
    return {"key": key, "size_bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(), "row_count": rows}


def put(api, reexport_id, body, *, roles=INTERNAL, tenant="tenant-a", headers=None, sub="svc-restore"):
    event = http_event("PUT", f"{REEXPORTS}/{reexport_id}", claims=claims_for(tenant, roles, sub), body=body)
    event["headers"].update(headers or {})
    return api.invoke(event)


def record_of(api, reexport_id):
    """The record as stored (without the download URL a GET mints afresh each time)."""
    record = api.call("GET", f"{REEXPORTS}/{reexport_id}").json
    return {name: value for name, value in record.items() if not name.startswith("download_")}


def test_storing_a_result_ends_the_reexport_succeeded_and_supersedes_its_job(api, aws, report, pending):
    new_file = stored_file(aws)

    response = put(api, pending["id"], {"expected_version": 1, "new_file": new_file})

    assert response.status == 200, response.body
    record = response.json
    assert response.headers["etag"] == '"2"'
    assert (record["status"], record["version"], record["matches_original"]) == ("succeeded", 2, True)
    check = record["new_file"].pop("check")
    assert record["new_file"] == {**new_file, "file_name": "kpi_feeding.csv", "mime_type": "text/csv"}
    assert (check["read_as"], check["gzip"]) == ("csv", False)
    assert "sha256, size and row count computed by the service from the object" in check["checked"]
    assert record["comparison"] is None and record["completed_at"] is not None
    assert api.call("GET", f"{JOBS}/{pending['job_id']}").json["status"] == "cancelled"
    assert api.call("GET", f"{JOBS}/{report.id}").json["active_reexport_id"] is None
    [*_, completed] = history(api, report.id)
    assert (completed["event"], completed["actor"]) == ("reexport_completed", "svc-restore")
    assert (completed["details"]["via"], completed["details"]["matches_original"]) == ("internal_service", True)
    assert run_worker(aws) == []  # the superseded job's wake-up finds nothing to do


def test_a_stored_result_past_the_reexports_expiry_gives_no_download_url(api, aws, report, pending):
    stored = put(api, pending["id"], {"expected_version": 1, "new_file": stored_file(aws)}).json
    assert stored["expires_at"] is not None
    assert api.call("GET", f"{REEXPORTS}/{pending['id']}").json["download_url"] is not None
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"REEXPORT#{pending['id']}"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"S": "2020-01-01T00:00:00.000Z"}},
    )

    record = api.call("GET", f"{REEXPORTS}/{pending['id']}").json

    assert (record["status"], record["expires_at"]) == ("succeeded", "2020-01-01T00:00:00.000Z")
    assert (record["download_url"], record["download_expires_at"]) == (None, None)
    issued = [entry for entry in history(api, pending["job_id"]) if entry["event"] == "download_url_issued"]
    assert len(issued) == 1  # the one URL handed out before the expiry


def test_a_stored_file_that_differs_is_recorded_as_not_matching(api, aws, pending):
    new_file = stored_file(aws, body=REPORT_BODY + b"k-2,2025-01-02,farm-1\r\n")

    record = put(api, pending["id"], {"expected_version": 1, "new_file": new_file}).json

    assert (record["status"], record["matches_original"]) == ("succeeded", False)
    assert record["comparison"]["compared"] is False
    assert "stored by an internal service" in record["comparison"]["reason"]


def test_the_version_may_come_as_if_match(api, aws):
    for if_match in ['"1"', "1", 'W/"1"']:
        report = put_succeeded_report(aws)
        pending = api.call("POST", REEXPORTS, body={"report_id": report.id}).json

        response = put(api, pending["id"], {"new_file": stored_file(aws)}, headers={"if-match": if_match})

        assert (response.status, response.json["version"]) == (200, 2), if_match


INVALID_UPDATES = [
    ({}, {}, "give new_file, notification_sent or both"),
    ({"notification_sent": True}, {}, "expected_version (or the If-Match header) is required"),
    ({"notification_sent": True, "expected_version": 1}, {"if-match": '"2"'}, "name different versions"),
    ({"notification_sent": True}, {"if-match": "*"}, "If-Match must be the re-export's version"),
    ({"notification_sent": False, "expected_version": 1}, {}, "notification_sent: Input should be True"),
    ({"expected_version": 0, "notification_sent": True}, {}, "expected_version: Input should be greater"),
    ({"expected_version": 1, "new_file": {"key": "x"}}, {}, "new_file.size_bytes: Field required"),
    ({"expected_version": 1, "status": "succeeded", "notification_sent": True}, {}, "status: unknown field"),
]


def test_invalid_updates_are_400_and_change_nothing(api, pending):
    for body, headers, fragment in INVALID_UPDATES:
        response = put(api, pending["id"], body, headers=headers)

        assert (response.status, response.error_code) == (400, "VALIDATION_ERROR"), body
        assert fragment in response.json["error"]["message"], (body, response.json)
    assert record_of(api, pending["id"]) == {
        name: value for name, value in pending.items() if not name.startswith("download_")
    }


BAD_FILE_REFERENCES = [
    ({"key": "tenants/tenant-b/restored/kpi_feeding.csv"}, "must name an object under tenants/tenant-a/"),
    ({"key": "tenants/tenant-a/../tenant-b/x.csv"}, "must name an object under tenants/tenant-a/"),
    ({"key": "tenants/tenant-a/never-written.csv"}, "names no stored object"),
    ({"size_bytes": 3}, "new_file.size_bytes does not match the stored object"),
    ({"sha256": "0" * 64}, "new_file.sha256 does not match the stored object"),
    ({"row_count": 7}, "new_file.row_count does not match the stored object"),
    ({"sha256": "ABC"}, "new_file.sha256: String should match pattern"),
]


def test_a_file_reference_must_name_this_tenants_stored_object(api, aws, pending):
    aws.s3.put_object(Bucket=aws.bucket, Key="tenants/tenant-b/restored/kpi_feeding.csv", Body=REPORT_BODY)
    for change, fragment in BAD_FILE_REFERENCES:
        new_file = {**stored_file(aws), **change}

        response = put(api, pending["id"], {"expected_version": 1, "new_file": new_file})

        assert (response.status, response.error_code) == (400, "VALIDATION_ERROR"), change
        assert fragment in response.json["error"]["message"], (change, response.json)
    assert record_of(api, pending["id"])["status"] == "pending"


def test_a_stale_version_is_409_and_changes_nothing(api, aws, pending):
    first = put(api, pending["id"], {"expected_version": 1, "new_file": stored_file(aws)})
    after_first = record_of(api, pending["id"])

    replay = put(api, pending["id"], {"expected_version": 1, "new_file": stored_file(aws)})
    stale_notice = put(api, pending["id"], {"notification_sent": True}, headers={"if-match": '"1"'})

    assert first.status == 200
    for response in (replay, stale_notice):
        assert (response.status, response.error_code) == (409, "VERSION_CONFLICT")
        assert response.json["error"]["message"] == "The re-export is at version 2, not 1; read it again"
    assert record_of(api, pending["id"]) == after_first


def test_a_result_cannot_be_stored_into_a_cancelled_or_finished_reexport(api, aws, pending):
    cancelled = api.call("DELETE", f"{REEXPORTS}/{pending['id']}").json

    response = put(api, pending["id"], {"expected_version": cancelled["version"], "new_file": stored_file(aws)})

    assert (response.status, response.error_code) == (409, "INVALID_TRANSITION")
    assert response.json["error"]["message"] == "A re-export that is cancelled cannot take a result"
    assert record_of(api, pending["id"])["new_file"] is None


def test_a_pending_reexport_cannot_be_announced(api, pending):
    response = put(api, pending["id"], {"expected_version": 1, "notification_sent": True})

    assert (response.status, response.error_code) == (409, "INVALID_TRANSITION")
    assert "this one is pending" in response.json["error"]["message"]


def test_announcing_a_finished_reexport_publishes_its_lineage_once(api, aws, report, pending):
    put(api, pending["id"], {"expected_version": 1, "new_file": stored_file(aws)})
    aws.notifications(), aws.events()

    response = put(api, pending["id"], {"notification_sent": True}, headers={"if-match": '"2"'})
    again = put(api, pending["id"], {"notification_sent": True}, headers={"if-match": '"3"'})

    assert response.status == 200, response.body
    record = response.json
    assert (record["version"], record["notification_sent_at"] is not None) == (3, True)
    [notification] = aws.notifications()
    assert notification["Subject"] == "Report re-export completed"
    assert "The new file is byte-identical to the original." in notification["Message"]
    assert notification["MessageAttributes"] == {
        "tenant_id": {"Type": "String", "Value": "tenant-a"},
        "status": {"Type": "String", "Value": "succeeded"},
        "job_type": {"Type": "String", "Value": "KPI_FEEDING_EXPORT"},
        "carries_link": {"Type": "String", "Value": "false"},
    }
    [event] = aws.events()
    assert event["detail-type"] == "Report Reexport Completed"
    assert event["detail"]["reexport_id"] == pending["id"] and event["detail"]["report_id"] == report.id
    assert event["detail"]["matches_original"] is True
    assert event["detail"]["new_file"]["sha256"] == event["detail"]["original_file"]["sha256"] == report.sha256
    assert (again.status, again.error_code) == (409, "INVALID_TRANSITION")
    assert "already announced" in again.json["error"]["message"]
    assert aws.notifications() == []


def test_a_result_and_its_announcement_in_one_request(api, aws, pending):
    response = put(api, pending["id"], {"expected_version": 1, "new_file": stored_file(aws), "notification_sent": True})

    assert response.status == 200
    assert (response.json["status"], response.json["version"]) == ("succeeded", 3)
    assert response.json["notification_sent_at"] is not None
    assert len(aws.notifications()) == 1


def test_storing_while_the_job_runs_cancels_the_job_so_its_attempt_stops(api, aws, pending):
    # The job ends (superseded) in the transaction that ends its re-export: a re-export never reads succeeded
    # while its job still runs, and the attempt generating it loses its claim at its next checkpoint.
    jobs = job_repository()
    claimed = jobs.claim(
        "tenant-a", pending["job_id"], now="2030-01-01T00:00:00.000Z", lease_until="2030-01-01T00:10:00.000Z"
    )

    response = put(api, pending["id"], {"expected_version": 1, "new_file": stored_file(aws)})

    assert response.json["status"] == "succeeded"
    superseded = api.call("GET", f"{JOBS}/{pending['job_id']}").json
    assert superseded["status"] == "cancelled"
    with pytest.raises(StaleWrite):
        jobs.update_attempt(claimed, {"progress_pct": 50})


def test_another_tenants_service_cannot_update_the_reexport(api, aws, pending):
    response = put(api, pending["id"], {"expected_version": 1, "notification_sent": True}, tenant="tenant-b")

    assert (response.status, response.error_code) == (404, "NOT_FOUND")
    assert record_of(api, pending["id"]) == {
        name: value for name, value in pending.items() if not name.startswith("download_")
    }


def test_storing_while_the_job_keeps_writing_progress_is_not_refused(api, aws, pending, monkeypatch):
    jobs = job_repository()
    claimed = jobs.claim(
        "tenant-a", pending["job_id"], now="2030-01-01T00:00:00.000Z", lease_until="2030-01-01T00:10:00.000Z"
    )
    client = clients.dynamodb()
    real_transact = client.transact_write_items

    def a_checkpoint_lands_first(**kwargs):
        # The generator writes progress between the PUT's read of the job and its transaction: a new version.
        jobs.update_attempt(claimed, {"progress_pct": 40})
        return real_transact(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", a_checkpoint_lands_first)

    response = put(api, pending["id"], {"expected_version": 1, "new_file": stored_file(aws)})

    assert response.status == 200, response.body
    assert response.json["status"] == "succeeded"
    superseded = api.call("GET", f"{JOBS}/{pending['job_id']}").json
    assert (superseded["status"], superseded["progress_pct"]) == ("cancelled", 40)


def test_two_announcements_at_the_same_version_publish_once(api, aws, pending, monkeypatch):
    put(api, pending["id"], {"expected_version": 1, "new_file": stored_file(aws)})
    aws.notifications(), aws.events()
    events = clients.events()
    real_put_events = events.put_events
    overlapping = []

    def a_second_request_arrives_meanwhile(**kwargs):
        if not overlapping:
            overlapping.append(put(api, pending["id"], {"expected_version": 2, "notification_sent": True}))
        return real_put_events(**kwargs)

    monkeypatch.setattr(events, "put_events", a_second_request_arrives_meanwhile)

    response = put(api, pending["id"], {"expected_version": 2, "notification_sent": True})

    assert response.status == 200, response.body
    assert response.json["version"] == 3
    [second] = overlapping
    assert (second.status, second.error_code) == (409, "CONCURRENT_UPDATE")
    assert len(aws.notifications()) == 1 and len(aws.events()) == 1


def test_an_announcement_that_cannot_be_published_is_503_and_can_be_retried(api, aws, pending):
    import boto3

    put(api, pending["id"], {"expected_version": 1, "new_file": stored_file(aws)})
    sns = boto3.client("sns")
    [topic] = sns.list_topics()["Topics"]
    sns.delete_topic(TopicArn=topic["TopicArn"])

    response = put(api, pending["id"], {"expected_version": 2, "notification_sent": True})

    assert (response.status, response.error_code) == (503, "SERVICE_UNAVAILABLE")
    assert "try again" in response.json["error"]["message"]
    unchanged = record_of(api, pending["id"])
    assert (unchanged["version"], unchanged["notification_sent_at"]) == (2, None)
    sns.create_topic(Name=topic["TopicArn"].rsplit(":", 1)[1])

    retried = put(api, pending["id"], {"expected_version": 2, "notification_sent": True})

    assert retried.status == 200, retried.body
    assert (retried.json["version"], retried.json["notification_sent_at"] is not None) == (3, True)


def test_the_originals_own_file_is_refused_so_a_lineage_cannot_be_forged(api, aws, report, pending):
    # The forgery: the original's key with the original's figures, and the record would say "matches".
    original = api.call("GET", f"{JOBS}/{report.id}").json
    forged = {
        "key": original["file_path"],
        "size_bytes": original["size_bytes"],
        "sha256": original["sha256"],
        "row_count": original["row_count"],
    }
    same_job = {**forged, "key": f"tenants/tenant-a/jobs/{report.id}/9/copy.csv"}
    aws.s3.copy_object(Bucket=aws.bucket, Key=same_job["key"], CopySource={"Bucket": aws.bucket, "Key": forged["key"]})

    for new_file in (forged, same_job):
        response = put(api, pending["id"], {"expected_version": 1, "new_file": new_file})

        assert (response.status, response.error_code) == (400, "VALIDATION_ERROR"), response.body
        assert "not the original report's" in response.json["error"]["message"]
    assert record_of(api, pending["id"])["status"] == "pending"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"\x00\xff\xfe not text", "not a readable csv report file"),
        (b'id,date\r\n"k-1,never closed\r\n' + b"x" * 200_000, "not a readable csv report file"),
    ],
)
def test_a_file_that_is_not_a_report_of_the_jobs_format_is_refused(api, aws, pending, body, fragment):
    new_file = stored_file(aws, body=body)

    response = put(api, pending["id"], {"expected_version": 1, "new_file": {**new_file, "row_count": 0}})

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR"), response.body
    assert fragment in response.json["error"]["message"]
    assert record_of(api, pending["id"])["status"] == "pending"


def test_the_service_counts_rows_as_csv_reads_them(api, aws, pending):
    # A quoted cell with a line break is one row, not two: the count is the reader's, not the lines'.
    body = REPORT_BODY + b'k-2,2025-01-02,"farm\r\n1"\r\n'
    new_file = {**stored_file(aws, body=body), "row_count": 2}

    response = put(api, pending["id"], {"expected_version": 1, "new_file": new_file})

    assert response.status == 200, response.body
    assert response.json["new_file"]["row_count"] == 2


def test_a_result_larger_than_the_service_reads_is_refused(api, aws, pending, monkeypatch):
    monkeypatch.setenv("REEXPORT_RESULT_MAX_BYTES", "10")
    get_settings.cache_clear()
    reexport_results.cache_clear()

    response = put(api, pending["id"], {"expected_version": 1, "new_file": stored_file(aws)})

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert "larger than the 10 bytes" in response.json["error"]["message"]
