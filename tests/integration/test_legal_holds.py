"""A tenant admin's legal hold keeps a report's file and every file of its lineage (S3 Object Lock, which
moto enforces): no delete passes it, downloads work past expires_at, and the history says who held it and
who lifted it, and why."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from botocore.exceptions import ClientError

from report_export.core.models.common import format_timestamp, now_utc

from support.reexports import (
    JOBS,
    REEXPORTS,
    REPORT_BODY,
    generated_report,
    history,
    put_succeeded_report,
    run_worker,
)

REASON = "Audit 2026-14 by the funder"


def hold_path(job_id: str) -> str:
    return f"{JOBS}/{job_id}/legal-hold"


def place(api, job_id: str, reason: str = REASON, **kwargs):
    return api.call("PUT", hold_path(job_id), body={"reason": reason}, **kwargs)


def lift(api, job_id: str, reason: str = "Audit closed", **kwargs):
    return api.call("DELETE", hold_path(job_id), query={"reason": reason}, **kwargs)


def hold_status(aws, key: str, version_id: str) -> str:
    return aws.s3.get_object_legal_hold(Bucket=aws.bucket, Key=key, VersionId=version_id)["LegalHold"]["Status"]


def job_item(aws, job_id: str) -> dict:
    key = {"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{job_id}"}}
    return aws.dynamodb.get_item(TableName=aws.table_name, Key=key, ConsistentRead=True)["Item"]


def set_expired(aws, job_id: str) -> None:
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{job_id}"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"S": format_timestamp(now_utc() - timedelta(days=1))}},
    )


def downloaded(api, job_id: str) -> bytes:
    response = api.call("GET", f"{JOBS}/{job_id}/download")
    assert response.status == 200, response.body
    return requests.get(response.json["download_url"], timeout=5).content


def test_a_held_file_survives_every_delete_and_still_downloads_past_its_expiry(api, aws):
    report = put_succeeded_report(aws)

    response = place(api, report.id)

    assert response.status == 200, response.body
    hold = response.json
    [held] = hold["files"]
    assert (hold["report_id"], hold["reason"], hold["placed_by"]) == (report.id, REASON, "user-1")
    assert (held["job_id"], held["key"]) == (report.id, report.file_path)
    assert hold_status(aws, report.file_path, held["version_id"]) == "ON"
    assert api.call("GET", f"{JOBS}/{report.id}").json["legal_hold"] == hold
    # Nobody deletes the held version, not even the account (moto enforces Object Lock).
    with pytest.raises(ClientError) as refused:
        aws.s3.delete_object(Bucket=aws.bucket, Key=report.file_path, VersionId=held["version_id"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # Past its expires_at, the held file still downloads.
    set_expired(aws, report.id)
    assert downloaded(api, report.id) == REPORT_BODY
    # What the lifecycle rule does at expiry (a delete marker over the held version): the link names that version.
    # (moto refuses the signature of a presigned GET of a version under a delete marker with a response header
    # override, which S3 serves; so the version is read here directly.)
    aws.s3.delete_object(Bucket=aws.bucket, Key=report.file_path)
    link = api.call("GET", f"{JOBS}/{report.id}/download")
    assert link.status == 200, link.body
    assert f"versionId={held['version_id']}" in link.json["download_url"]
    stored = aws.s3.get_object(Bucket=aws.bucket, Key=report.file_path, VersionId=held["version_id"])
    assert stored["Body"].read() == REPORT_BODY


def test_lifting_the_hold_lets_the_file_go_and_the_history_shows_both(api, aws):
    report = put_succeeded_report(aws)
    # As the ending of every job leaves it: the record expires JOB_RECORD_RETENTION_DAYS after.
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{report.id}"}},
        UpdateExpression="SET #ttl = :ttl",
        ExpressionAttributeNames={"#ttl": "ttl"},
        ExpressionAttributeValues={":ttl": {"N": "2100000000"}},
    )
    ttl_before = job_item(aws, report.id)["ttl"]
    [held] = place(api, report.id).json["files"]
    assert "ttl" not in job_item(aws, report.id)  # the record of a held file does not expire either

    assert lift(api, report.id).status == 204

    assert hold_status(aws, report.file_path, held["version_id"]) == "OFF"
    assert api.call("GET", f"{JOBS}/{report.id}").json["legal_hold"] is None
    assert job_item(aws, report.id).get("ttl") == ttl_before and "held_ttl" not in job_item(aws, report.id)
    aws.s3.delete_object(Bucket=aws.bucket, Key=report.file_path, VersionId=held["version_id"])
    entries = [(entry["event"], entry["actor"], entry["details"].get("reason")) for entry in history(api, report.id)]
    assert entries[-2:] == [
        ("legal_hold_placed", "user-1", REASON),
        ("legal_hold_lifted", "user-1", "Audit closed"),
    ]
    set_expired(aws, report.id)
    assert api.call("GET", f"{JOBS}/{report.id}/download").error_code in ("REPORT_EXPIRED", "REPORT_FILE_GONE")


def test_a_hold_keeps_the_files_of_the_reports_reexports_too(api, aws):
    report = generated_report(api, aws)
    requested = api.call("POST", REEXPORTS, body={"report_id": report["id"]}).json
    run_worker(aws)
    reexport_job = api.call("GET", f"{JOBS}/{requested['job_id']}").json
    assert reexport_job["status"] == "succeeded"

    hold = place(api, report["id"]).json

    assert sorted((file["job_id"], file["key"]) for file in hold["files"]) == sorted(
        [(report["id"], report["file_path"]), (reexport_job["id"], reexport_job["file_path"])]
    )
    for file in hold["files"]:
        assert hold_status(aws, file["key"], file["version_id"]) == "ON"
    covered = api.call("GET", f"{JOBS}/{reexport_job['id']}").json["legal_hold"]
    assert (covered["report_id"], [file["job_id"] for file in covered["files"]]) == (report["id"], [reexport_job["id"]])
    # The re-export's file is held with its original: it is lifted there, and holding it again changes nothing.
    refused = lift(api, reexport_job["id"])
    assert (refused.status, refused.error_code) == (409, "HELD_THROUGH_LINEAGE")
    assert place(api, reexport_job["id"]).json["report_id"] == report["id"]
    set_expired(aws, reexport_job["id"])
    assert (
        downloaded(api, reexport_job["id"])
        == aws.s3.get_object(Bucket=aws.bucket, Key=reexport_job["file_path"])["Body"].read()
    )

    assert lift(api, report["id"]).status == 204

    for file in hold["files"]:
        assert hold_status(aws, file["key"], file["version_id"]) == "OFF"
    assert api.call("GET", f"{JOBS}/{reexport_job['id']}").json["legal_hold"] is None


def test_a_reexport_held_on_its_own_stays_held_when_its_originals_hold_is_lifted(api, aws):
    report = generated_report(api, aws)
    requested = api.call("POST", REEXPORTS, body={"report_id": report["id"]}).json
    run_worker(aws)
    own = place(api, requested["job_id"], reason="Its own case").json
    [own_file] = own["files"]

    place(api, report["id"])
    assert lift(api, report["id"]).status == 204

    assert hold_status(aws, own_file["key"], own_file["version_id"]) == "ON"
    assert api.call("GET", f"{JOBS}/{requested['job_id']}").json["legal_hold"]["report_id"] == requested["job_id"]


def test_holding_twice_keeps_the_first_hold_and_records_it_once(api, aws):
    report = put_succeeded_report(aws)
    first = place(api, report.id).json

    again = place(api, report.id, reason="Another reason")

    assert again.status == 200 and again.json == first
    assert [entry["event"] for entry in history(api, report.id)].count("legal_hold_placed") == 1


@pytest.mark.reliability(
    scenario="4 concurrent legal holds on one report",
    injected="the same PUT …/legal-hold four times at once",
    checked="one hold (the same answer to all four), one history entry",
)
def test_holds_placed_at_the_same_moment_make_one_hold(api, serialized_aws):
    report = put_succeeded_report(serialized_aws)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: place(api, report.id).json, range(4)))

    assert len({answer["placed_at"] for answer in answers}) == 1
    assert [entry["event"] for entry in history(api, report.id)].count("legal_hold_placed") == 1


def test_a_report_without_a_file_cannot_be_held(api, aws):
    queued = api.create_job().json

    response = place(api, queued["id"])

    assert (response.status, response.error_code) == (409, "REPORT_NOT_READY")
    assert api.call("GET", f"{JOBS}/{queued['id']}").json["legal_hold"] is None


def test_a_report_whose_file_is_gone_cannot_be_held_and_nothing_is_recorded(api, aws):
    report = put_succeeded_report(aws)
    for version in aws.s3.list_object_versions(Bucket=aws.bucket, Prefix=report.file_path)["Versions"]:
        aws.s3.delete_object(Bucket=aws.bucket, Key=report.file_path, VersionId=version["VersionId"])

    response = place(api, report.id)

    assert (response.status, response.error_code) == (410, "REPORT_FILE_GONE")
    assert api.call("GET", f"{JOBS}/{report.id}").json["legal_hold"] is None
    assert "legal_hold_placed" not in [entry["event"] for entry in history(api, report.id)]


def test_lifting_a_hold_that_is_not_there_is_a_conflict(api, aws):
    report = put_succeeded_report(aws)

    response = lift(api, report.id)

    assert (response.status, response.error_code) == (409, "NOT_HELD")


@pytest.mark.parametrize("roles", ["[farm_manager]", "[viewer]", "[house_operator]", "[internal_service]"])
def test_only_a_tenant_admin_places_or_lifts_a_hold(api, aws, roles):
    report = put_succeeded_report(aws)
    place(api, report.id)

    assert place(api, report.id, roles=roles).error_code == "FORBIDDEN"
    assert lift(api, report.id, roles=roles).error_code == "FORBIDDEN"
    assert api.call("GET", f"{JOBS}/{report.id}").json["legal_hold"] is not None


def test_another_tenants_report_is_not_found(api, aws):
    report = put_succeeded_report(aws)

    assert place(api, report.id, tenant="tenant-b").error_code == "NOT_FOUND"
    place(api, report.id)
    assert lift(api, report.id, tenant="tenant-b").error_code == "NOT_FOUND"
    assert api.call("GET", f"{JOBS}/{report.id}").json["legal_hold"] is not None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "   "},
        {"reason": "x" * 501},
        {"reason": 7},
        {"reason": "ok", "until": "2030-01-01"},
    ],
)
def test_a_hold_needs_a_reason(api, aws, body):
    report = put_succeeded_report(aws)

    response = api.call("PUT", hold_path(report.id), body=body)

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert api.call("GET", f"{JOBS}/{report.id}").json["legal_hold"] is None


@pytest.mark.parametrize(
    "query",
    [{}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"reason": "\u202e\u0000 lifted \r\n"}],
)
def test_lifting_needs_a_reason(api, aws, query):
    report = put_succeeded_report(aws)
    place(api, report.id)

    response = api.call("DELETE", hold_path(report.id), query=query)

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert api.call("GET", f"{JOBS}/{report.id}").json["legal_hold"] is not None


def test_a_reason_in_any_script_with_emoji_is_kept_as_written(api, aws):
    report = put_succeeded_report(aws)
    reason = "Tilsyn fra Bufdir 2026 \U0001f469\u200d\U0001f4bb: behold alle filer"

    assert place(api, report.id, reason=reason).json["reason"] == reason
