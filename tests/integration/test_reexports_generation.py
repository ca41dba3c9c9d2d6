"""A re-export through the real pipeline: API → SQS → generator → S3 → state machine (moto runs the
ASL), with the sample upstream serving the data. What the lineage says, whether the file matches the
original, the row-by-row comparison, a lost original, failures, cancels and the rollback.
"""

from __future__ import annotations

import hashlib
import json

import requests

from report_export.aws import clients
from report_export.core.models.common import JobType
from report_export.generation.generator import upstream_client
from report_export.reports import definition_for

from conftest import take_over_before_the_store, valid_job_request
from support.reexports import (
    JOBS,
    REEXPORTS,
    generated_report,
    history,
    keyed_rows,
    object_bytes,
    run_worker,
)
from support.state_machine import ANNOUNCED_PATH, state_names

SORT_KEY = definition_for(JobType.FEED_INTAKE_EXPORT).sort_key


def reexport(api, report_id, **body):
    response = api.call("POST", REEXPORTS, body={"report_id": report_id, **body})
    assert response.status == 202, response.body
    return response.json


def execution_of(executions, job_id):
    [execution] = [run for run in executions if run["name"].startswith(job_id)]
    return execution


def record_of(api, reexport_id):
    return api.call("GET", f"{REEXPORTS}/{reexport_id}").json


def drain_announcements(aws):
    return aws.notifications(), aws.events()


def test_unchanged_data_regenerates_a_byte_identical_file_and_says_so(api, aws, upstream):
    upstream.knobs.rows = 700
    original = generated_report(api, aws)
    drain_announcements(aws)
    requested = reexport(api, original["id"], reason="quarterly audit")

    executions = run_worker(aws)

    execution = execution_of(executions, requested["job_id"])
    assert execution["status"] == "SUCCEEDED"
    transaction = json.loads(execution["input"])["store"]["items"]
    # The state machine's role allows UpdateItem and PutItem only (IAM has no TransactWriteItems action).
    assert sorted(kind for item in transaction for kind in item) == ["Put", "Update", "Update", "Update", "Update"]
    record = record_of(api, requested["id"])
    assert (record["status"], record["matches_original"], record["comparison"]) == ("succeeded", True, None)
    new_job = api.call("GET", f"{JOBS}/{record['job_id']}").json
    assert new_job["status"] == "succeeded"
    assert record["new_file"] == {
        "key": new_job["file_path"],
        "file_name": new_job["file_name"],
        "mime_type": "text/csv",
        "size_bytes": new_job["size_bytes"],
        "sha256": original["sha256"],
        "row_count": 700,
    }
    assert record["new_file"]["key"] != original["file_path"]
    assert record["changed_inputs"] == {"definition_version": False, "parameters": False, "source_watermark": False}
    assert record["completed_at"] is not None and record["notification_sent_at"] is not None
    assert hashlib.sha256(object_bytes(aws, record["new_file"]["key"])).hexdigest() == original["sha256"]
    assert api.call("GET", f"{JOBS}/{original['id']}").json["active_reexport_id"] is None
    [*_, completed] = history(api, original["id"])
    assert (completed["event"], completed["actor"]) == ("reexport_completed", "user-1")
    assert completed["details"] | {"job_id": None} == {
        "reexport_id": record["id"],
        "job_id": None,
        "outcome": "succeeded",
        "matches_original": True,
        "sha256": original["sha256"],
        "requested_by": "user-1",
        "reason": "quarterly audit",
    }
    [notification] = aws.notifications()
    assert notification["Subject"].startswith("Report re-exported: Feed intake records")
    assert "The new file is byte-identical to the original." in notification["Message"]
    assert "Reason: quarterly audit" in notification["Message"]
    [event] = aws.events()
    assert event["detail-type"] == "Report Job Succeeded"
    lineage = event["detail"]["reexport"]
    assert (lineage["reexport_id"], lineage["report_id"], lineage["matches_original"]) == (
        record["id"],
        original["id"],
        True,
    )
    assert lineage["original_file"]["sha256"] == lineage["new_file"]["sha256"] == original["sha256"]


def test_the_download_url_of_a_succeeded_reexport_serves_the_new_file_and_is_audited(api, aws, upstream):
    upstream.knobs.rows = 40
    original = generated_report(api, aws)
    requested = reexport(api, original["id"])
    run_worker(aws)

    response = api.call("GET", f"{REEXPORTS}/{requested['id']}", roles="[viewer]", sub="auditor-4")

    record = response.json
    assert response.headers["etag"] == f'"{record["version"]}"'
    assert record["download_expires_at"] is not None
    body = requests.get(record["download_url"], timeout=5).content
    assert hashlib.sha256(body).hexdigest() == original["sha256"]
    issued = [entry for entry in history(api, record["job_id"]) if entry["event"] == "download_url_issued"]
    assert [(entry["actor"], entry["details"]["via"], entry["details"]["reexport_id"]) for entry in issued] == [
        ("auditor-4", "reexport", record["id"])
    ]


def test_changed_upstream_data_gives_a_file_that_differs_with_a_correct_row_diff(api, aws, upstream):
    upstream.knobs.rows = 600
    original = generated_report(api, aws)
    upstream.knobs.data_version = 2  # the sample upstream's "the data changed" knob
    upstream.knobs.rows = 650  # and some records came and went: their timestamps, part of the key, move
    drain_announcements(aws)
    requested = reexport(api, original["id"])

    run_worker(aws)

    record = record_of(api, requested["id"])
    assert (record["status"], record["matches_original"]) == ("succeeded", False)
    assert record["new_file"]["sha256"] != original["sha256"]
    old_rows = keyed_rows(object_bytes(aws, original["file_path"]), SORT_KEY)
    new_rows = keyed_rows(object_bytes(aws, record["new_file"]["key"]), SORT_KEY)
    only_old = sorted(old_rows.keys() - new_rows.keys())
    only_new = sorted(new_rows.keys() - old_rows.keys())
    common = sorted(old_rows.keys() & new_rows.keys())
    changed = [key for key in common if old_rows[key] != new_rows[key]]
    assert only_old and only_new and changed, "the knobs should give every kind of difference"
    comparison = record["comparison"]
    assert comparison == {
        "compared": True,
        "reason": None,
        "only_in_original": len(only_old),
        "only_in_new": len(only_new),
        "changed": len(changed),
        "unchanged": len(common) - len(changed),
        "first_keys": {
            "only_in_original": [dict(zip(SORT_KEY, key, strict=True)) for key in only_old[:5]],
            "only_in_new": [dict(zip(SORT_KEY, key, strict=True)) for key in only_new[:5]],
            "changed": [dict(zip(SORT_KEY, key, strict=True)) for key in changed[:5]],
        },
    }
    assert record["changed_inputs"] == {"definition_version": False, "parameters": False, "source_watermark": False}
    [notification] = aws.notifications()
    assert "The new file differs from the original." in notification["Message"]
    assert f"Rows only in the original: {len(only_old)}" in notification["Message"]
    assert "the upstream data changed" in notification["Message"]
    [event] = aws.events()
    assert event["detail"]["reexport"]["comparison"]["changed"] == len(changed)


def test_a_report_whose_file_was_deleted_is_regenerated_identically(api, aws, upstream):
    upstream.knobs.rows = 300
    original = generated_report(api, aws)
    aws.s3.delete_object(Bucket=aws.bucket, Key=original["file_path"])
    assert api.call("GET", f"{JOBS}/{original['id']}/download").error_code == "REPORT_FILE_GONE"
    requested = reexport(api, original["id"], reason="file lost")

    run_worker(aws)

    record = record_of(api, requested["id"])
    assert (record["status"], record["matches_original"]) == ("succeeded", True)
    body = requests.get(record["download_url"], timeout=5).content
    assert hashlib.sha256(body).hexdigest() == original["sha256"] == record["original_file"]["sha256"]


def test_when_the_original_is_gone_and_the_data_changed_the_rows_cannot_be_compared(api, aws, upstream):
    original = generated_report(api, aws)
    aws.s3.delete_object(Bucket=aws.bucket, Key=original["file_path"])
    upstream.knobs.data_version = 3
    requested = reexport(api, original["id"])

    run_worker(aws)

    record = record_of(api, requested["id"])
    assert (record["status"], record["matches_original"]) == ("succeeded", False)
    assert record["comparison"] == {
        "compared": False,
        "reason": "the original file no longer exists",
        "only_in_original": None,
        "only_in_new": None,
        "changed": None,
        "unchanged": None,
        "first_keys": None,
    }


def test_a_gzip_override_changes_the_bytes_but_not_the_rows(api, aws, upstream):
    upstream.knobs.rows = 250
    original = generated_report(api, aws)
    requested = reexport(api, original["id"], overrides={"compression": "gzip"})

    run_worker(aws)

    record = record_of(api, requested["id"])
    assert (record["matches_original"], record["new_file"]["mime_type"]) == (False, "application/gzip")
    comparison = record["comparison"]
    assert (comparison["compared"], comparison["unchanged"], comparison["changed"]) == (True, 250, 0)
    assert (comparison["only_in_original"], comparison["only_in_new"]) == (0, 0)
    assert record["changed_inputs"]["parameters"] is True


def test_a_format_override_is_not_compared_row_by_row(api, aws):
    original = generated_report(api, aws)
    requested = reexport(api, original["id"], overrides={"format": "json"})

    run_worker(aws)

    record = record_of(api, requested["id"])
    assert record["matches_original"] is False
    assert record["comparison"]["compared"] is False
    assert record["comparison"]["reason"].startswith("the files have different formats (csv and json)")


def test_an_upstream_failure_fails_the_reexport_and_releases_the_report(api, aws, upstream):
    original = generated_report(api, aws)
    drain_announcements(aws)
    requested = reexport(api, original["id"])
    upstream.knobs.always_fail_with = 400

    executions = run_worker(aws)

    assert execution_of(executions, requested["job_id"])["status"] == "SUCCEEDED"
    record = record_of(api, requested["id"])
    assert (record["status"], record["error_code"]) == ("failed", "UPSTREAM_REJECTED")
    assert record["new_file"] is None and record["matches_original"] is None
    assert record["notification_sent_at"] is not None
    assert api.call("GET", f"{JOBS}/{record['job_id']}").json["status"] == "failed"
    assert api.call("GET", f"{JOBS}/{original['id']}").json["active_reexport_id"] is None
    [*_, completed] = history(api, original["id"])
    assert (completed["details"]["outcome"], completed["details"]["error_code"]) == ("failed", "UPSTREAM_REJECTED")
    [notification] = aws.notifications()
    assert notification["Subject"].startswith("Re-export failed:")
    [event] = aws.events()
    assert event["detail-type"] == "Report Job Failed"
    assert event["detail"]["reexport"]["status"] == "failed"
    upstream.knobs.always_fail_with = None
    assert api.call("POST", REEXPORTS, body={"report_id": original["id"]}).status == 202


def test_a_cancel_while_running_ends_the_job_and_the_reexport_cancelled(api, aws, upstream, monkeypatch):
    upstream.knobs.rows = 3000
    original = generated_report(api, aws)
    requested = reexport(api, original["id"])
    real_pages = upstream_client().pages
    answers = []

    def cancel_after_first_page(definition, job):
        for number, page in enumerate(real_pages(definition, job)):
            yield page
            if number == 0:
                answers.append(api.call("DELETE", f"{REEXPORTS}/{requested['id']}"))

    monkeypatch.setattr(upstream_client(), "pages", cancel_after_first_page)

    run_worker(aws)

    [answer] = answers
    assert answer.status == 202
    assert (answer.json["status"], answer.json["cancel_requested"]) == ("running", True)
    record = record_of(api, requested["id"])
    assert (record["status"], record["completed_at"] is not None) == ("cancelled", True)
    assert api.call("GET", f"{JOBS}/{record['job_id']}").json["status"] == "cancelled"
    assert api.call("GET", f"{JOBS}/{original['id']}").json["active_reexport_id"] is None
    [*_, cancelled] = history(api, original["id"])
    assert (cancelled["event"], cancelled["actor"], cancelled["details"]["while"]) == (
        "reexport_cancelled",
        "report-export",
        "running",
    )
    assert aws.s3.list_objects_v2(Bucket=aws.bucket)["KeyCount"] == 1  # the original only: the upload was aborted


def test_when_the_result_cannot_be_stored_the_new_file_is_deleted_and_the_reexport_fails(api, aws, monkeypatch):
    original = generated_report(api, aws)
    drain_announcements(aws)
    requested = reexport(api, original["id"])
    take_over_before_the_store(aws, monkeypatch, requested["job_id"])

    executions = run_worker(aws)

    failed = [execution for execution in executions if execution["status"] == "FAILED"]
    assert [execution["error"] for execution in failed] == ["StoreFailed"]
    assert "TransactionCanceled" in failed[0]["cause"] or "cancelled" in failed[0]["cause"].lower()
    keys = [obj["Key"] for obj in aws.s3.list_objects_v2(Bucket=aws.bucket)["Contents"]]
    assert keys == [original["file_path"]]
    record = record_of(api, requested["id"])
    # The job now belongs to another attempt, so neither the job nor (with it) the re-export changes here.
    assert record["status"] in ("running", "pending")
    assert api.call("GET", f"{JOBS}/{record['job_id']}").json["status"] == "running"
    assert not any(event["detail-type"] == "Report Job Succeeded" for event in aws.events())


def test_when_the_store_is_refused_while_the_job_still_runs_the_rollback_fails_job_and_reexport(api, aws, monkeypatch):
    original = generated_report(api, aws)
    drain_announcements(aws)
    requested = reexport(api, original["id"])
    sfn = clients.stepfunctions()
    real_start = sfn.start_execution

    def break_the_history_entry(**kwargs):
        # The history item already exists: the transaction is cancelled although job and record are as expected.
        execution_input = json.loads(kwargs["input"])
        history_item = execution_input["store"]["items"][-1]["Put"]
        aws.dynamodb.put_item(TableName=history_item["TableName"], Item=history_item["Item"])
        return real_start(**kwargs)

    monkeypatch.setattr(sfn, "start_execution", break_the_history_entry)

    executions = run_worker(aws)

    assert [execution["error"] for execution in executions if execution["status"] == "FAILED"] == ["StoreFailed"]
    record = record_of(api, requested["id"])
    assert (record["status"], record["error_code"]) == ("failed", "STORE_FAILED")
    assert record["notification_sent_at"] is not None
    new_job = api.call("GET", f"{JOBS}/{record['job_id']}").json
    assert (new_job["status"], new_job["error_code"], new_job["file_path"]) == ("failed", "STORE_FAILED", None)
    assert [obj["Key"] for obj in aws.s3.list_objects_v2(Bucket=aws.bucket)["Contents"]] == [original["file_path"]]
    assert api.call("GET", f"{JOBS}/{original['id']}").json["active_reexport_id"] is None
    [notification] = aws.notifications()
    assert notification["MessageAttributes"]["status"]["Value"] == "failed"
    [event] = aws.events()
    assert (event["detail-type"], event["detail"]["reexport"]["error_code"]) == ("Report Job Failed", "STORE_FAILED")


def test_an_ordinary_job_takes_the_same_states_with_only_its_own_items(api, aws):
    generated_report(api, aws, valid_job_request(filters=None))

    [execution] = aws.wait_for_executions()

    execution_input = json.loads(execution["input"])
    # The job's update and its leaving the tenant's active jobs.
    assert [list(item) for item in execution_input["store"]["items"]] == [["Update"], ["Update"]]
    assert len(execution_input["announcement"]["notified"]) == 1
    assert execution_input["announcement"]["notified"] == execution_input["announcement"]["notified_without_event"]
    assert "reexport" not in execution_input["announcement"]["event"]["detail"]
    assert state_names(aws.sfn, execution["executionArn"]) == ANNOUNCED_PATH


def store_result_as_internal_service(api, aws, requested, original):
    """An internal service stores a restored copy of the original as the re-export's result (PUT)."""
    from support.events import claims_for, http_event

    restored = object_bytes(aws, original["file_path"])
    key = "tenants/tenant-a/restored/feed.csv"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=restored, ContentType="text/csv")
    new_file = {
        "key": key,
        "size_bytes": len(restored),
        "sha256": hashlib.sha256(restored).hexdigest(),
        "row_count": original["row_count"],
    }
    version = record_of(api, requested["id"])["version"]
    event = http_event(
        "PUT",
        f"{REEXPORTS}/{requested['id']}",
        claims=claims_for("tenant-a", "[internal_service]", "svc-restore"),
        body={"expected_version": version, "new_file": new_file},
    )
    assert api.invoke(event).status == 200


def test_a_failure_after_an_internal_service_stored_the_result_leaves_both_as_the_service_left_them(
    api, aws, upstream, monkeypatch
):
    original = generated_report(api, aws)
    drain_announcements(aws)
    requested = reexport(api, original["id"])
    upstream.knobs.always_fail_with = 400
    sfn = clients.stepfunctions()
    real_start = sfn.start_execution

    def an_internal_service_got_there_first(**kwargs):
        store_result_as_internal_service(api, aws, requested, original)
        return real_start(**kwargs)

    monkeypatch.setattr(sfn, "start_execution", an_internal_service_got_there_first)

    execution = execution_of(run_worker(aws), requested["job_id"])

    # The service's result ended the job (superseded) with the record: the failure finds nothing to end.
    assert (execution["status"], execution["error"]) == ("FAILED", "StoreFailed")
    new_job = api.call("GET", f"{JOBS}/{requested['job_id']}").json
    assert (new_job["status"], new_job["error_code"]) == ("cancelled", None)
    record = record_of(api, requested["id"])
    # The record's own status stands, and its announcement is still to make.
    assert (record["status"], record["notification_sent_at"]) == ("succeeded", None)
    assert aws.events() == [] and aws.notifications() == []


def test_a_result_stored_by_a_service_during_the_store_leaves_its_announcement_to_make(api, aws, monkeypatch):
    from support.events import claims_for, http_event

    original = generated_report(api, aws)
    drain_announcements(aws)
    requested = reexport(api, original["id"])
    sfn = clients.stepfunctions()
    real_start = sfn.start_execution

    def a_service_stores_the_result_first(**kwargs):
        store_result_as_internal_service(api, aws, requested, original)
        return real_start(**kwargs)

    monkeypatch.setattr(sfn, "start_execution", a_service_stores_the_result_first)

    execution = execution_of(run_worker(aws), requested["job_id"])

    assert execution["error"] == "StoreFailed"
    keys = [obj["Key"] for obj in aws.s3.list_objects_v2(Bucket=aws.bucket)["Contents"]]
    assert sorted(keys) == sorted([original["file_path"], "tenants/tenant-a/restored/feed.csv"])  # ours deleted
    assert api.call("GET", f"{JOBS}/{requested['job_id']}").json["status"] == "cancelled"
    record = record_of(api, requested["id"])
    assert (record["status"], record["notification_sent_at"]) == ("succeeded", None)
    assert aws.events() == []
    answer = api.invoke(
        http_event(
            "PUT",
            f"{REEXPORTS}/{requested['id']}",
            claims=claims_for("tenant-a", "[internal_service]", "svc-restore"),
            body={"expected_version": record["version"], "notification_sent": True},
        )
    )
    assert answer.status == 200, answer.body
    assert answer.json["notification_sent_at"] is not None


def test_when_the_event_cannot_be_published_the_reexport_is_not_marked_notified(api, aws, upstream, monkeypatch):
    original = generated_report(api, aws)
    drain_announcements(aws)
    requested = reexport(api, original["id"])
    upstream.knobs.always_fail_with = 400
    sfn = clients.stepfunctions()
    real_start = sfn.start_execution

    def eventbridge_refuses_the_event(**kwargs):
        execution_input = json.loads(kwargs["input"])
        execution_input["announcement"]["event"]["detail_type"] = ""  # EventBridge answers FailedEntryCount 1
        return real_start(**{**kwargs, "input": json.dumps(execution_input)})

    monkeypatch.setattr(sfn, "start_execution", eventbridge_refuses_the_event)

    execution = execution_of(run_worker(aws), requested["job_id"])

    assert (execution["status"], execution["error"]) == ("FAILED", "AnnouncementFailed")
    record = record_of(api, requested["id"])
    assert (record["status"], record["notification_sent_at"]) == ("failed", None)
    assert len(aws.notifications()) == 1  # SNS went out; the event did not


def test_a_succeeded_reexport_whose_new_job_expired_gives_no_download_url(api, aws, upstream):
    original = generated_report(api, aws)
    requested = reexport(api, original["id"])
    run_worker(aws)
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{requested['job_id']}"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"S": "2020-01-01T00:00:00.000Z"}},
    )

    record = record_of(api, requested["id"])

    assert record["status"] == "succeeded" and record["new_file"] is not None
    assert (record["download_url"], record["download_expires_at"]) == (None, None)
    download = api.call("GET", f"{JOBS}/{requested['job_id']}/download")
    assert (download.status, download.error_code) == (410, "REPORT_EXPIRED")
    issued = [entry for entry in history(api, requested["job_id"]) if entry["event"] == "download_url_issued"]
    assert issued == []


def test_a_refused_failure_transaction_changes_nothing_and_ends_the_execution_failed(api, aws, upstream, monkeypatch):
    original = generated_report(api, aws)
    requested = reexport(api, original["id"])
    upstream.knobs.always_fail_with = 400
    take_over_before_the_store(aws, monkeypatch, requested["job_id"])

    execution = execution_of(run_worker(aws), requested["job_id"])

    history_events = aws.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)
    entered = state_names(aws.sfn, execution["executionArn"])
    assert entered == ["Check Outcome", "Store Outcome", "Read Job", "Check Stored Result", "Fail Store"]
    stores = [
        event
        for event in history_events["events"]
        if event["type"] == "TaskScheduled" and event["taskScheduledEventDetails"]["resource"] == "transactWriteItems"
    ]
    assert len(stores) == 4  # a cancelled transaction is tried three more times before it counts as refused
    assert execution["status"] == "FAILED"  # the job belongs to another attempt: this one changes nothing
    assert record_of(api, requested["id"])["status"] in ("pending", "running")
    assert api.call("GET", f"{JOBS}/{requested['job_id']}").json["status"] == "running"
