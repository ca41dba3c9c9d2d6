"""How long a report file is kept: the bucket's lifecycle rule (ExpireReports) deletes an object a number of
days after S3 created it, rounded up to the next midnight UTC, so no expires_at the service promises may lie
beyond that. The family: a generated job, a re-export completed by the pipeline, a result an internal service
stored (its object refreshed), and the refresh itself.

The age of an object is S3's own state: moto keeps it on its key as `last_modified`, which a test sets as if
the object had been created then (a multipart upload counts from its start, maybe hours before it completed).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from report_export.aws import clients
from report_export.aws.s3 import MIB, ObjectChanged, file_expiry, object_head, refresh_object
from report_export.core.settings import get_settings

from support.events import claims_for, http_event
from support.reexports import JOBS, REEXPORTS, REPORT_BODY, generated_report, put_succeeded_report, run_worker

INTERNAL = "[internal_service]"
RESULT_KEY = "tenants/tenant-a/restored/kpi_feeding.csv"


def set_created(aws, key, moment):
    """S3's record of when the object was created (what HEAD answers as Last-Modified)."""
    s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(aws.bucket, key).last_modified = moment.astimezone(UTC).replace(
        tzinfo=None
    )


def last_modified(aws, key):
    return aws.s3.head_object(Bucket=aws.bucket, Key=key)["LastModified"]


def lifecycle_deletion(created, days):
    """When the lifecycle rule deletes an object created then: days later, rounded up to the next midnight UTC."""
    due = created.astimezone(UTC) + timedelta(days=days)
    midnight = datetime.combine(due.date(), time(), tzinfo=UTC)
    return midnight if midnight == due else midnight + timedelta(days=1)


def parse(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def retention():
    return timedelta(days=get_settings().retention_days)


def just_before_midnight():
    """One second before the last midnight UTC: an upload that began then completes after it."""
    return datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC) - timedelta(seconds=1)


def uploads_begin_before_midnight(aws, monkeypatch):
    """Every report file the generator stores is recorded by S3 as created just before midnight: the upload
    began then, and the job succeeds after midnight. Returns that moment."""
    s3 = clients.s3()
    real_put = s3.put_object
    began = just_before_midnight()

    def stored_before_midnight(**request):
        response = real_put(**request)
        set_created(aws, request["Key"], began)
        return response

    monkeypatch.setattr(s3, "put_object", stored_before_midnight)
    return began


def put(api, reexport_id, body, *, sub="svc-restore"):
    return api.invoke(
        http_event("PUT", f"{REEXPORTS}/{reexport_id}", claims=claims_for("tenant-a", INTERNAL, sub), body=body)
    )


def stored_result(aws, *, created, body=REPORT_BODY, key=RESULT_KEY):
    """A result file an internal service stored long ago, with headers and metadata of its own."""
    aws.s3.put_object(
        Bucket=aws.bucket,
        Key=key,
        Body=body,
        ContentType="text/csv",
        ContentDisposition='attachment; filename="restored.csv"',
        CacheControl="no-store",
        Metadata={"produced-by": "archive-restore", "batch": "42"},
        ServerSideEncryption="AES256",
    )
    set_created(aws, key, created)
    return {"key": key, "size_bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(), "row_count": 1}


@pytest.fixture
def pending(api, aws):
    report = put_succeeded_report(aws)
    response = api.call("POST", REEXPORTS, body={"report_id": report.id, "reason": "restore"})
    assert response.status == 202, response.body
    return response.json


def unchanged(api, pending):
    record = api.call("GET", f"{REEXPORTS}/{pending['id']}").json
    assert {name: value for name, value in record.items() if not name.startswith("download_")} == {
        name: value for name, value in pending.items() if not name.startswith("download_")
    }
    assert api.call("GET", f"{JOBS}/{pending['job_id']}").json["status"] == "queued"


# --- the rule ---------------------------------------------------------------------------------


@given(
    created=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    days=st.integers(min_value=1, max_value=3650),
)
def test_an_expiry_counted_from_the_creation_is_never_after_the_lifecycle_deletion(created, days):
    assert created + timedelta(days=days) <= file_expiry(created, days) <= lifecycle_deletion(created, days)


# --- a generated job ----------------------------------------------------------------------------


def test_a_generated_files_expiry_counts_from_its_creation_not_from_the_jobs_success(api, aws, monkeypatch):
    began = uploads_begin_before_midnight(aws, monkeypatch)

    job = generated_report(api, aws)

    created = last_modified(aws, job["file_path"])
    expires_at = parse(job["expires_at"])
    assert created == began
    assert expires_at == created + retention()
    assert expires_at <= lifecycle_deletion(created, retention().days)
    [event] = [event for event in aws.events() if event["detail-type"] == "Report Job Succeeded"]
    assert parse(event["detail"]["expires_at"]) == expires_at  # what the notice promises is the same


# --- a re-export completed by the pipeline ------------------------------------------------------


def test_a_reexport_completed_by_the_pipeline_carries_its_files_expiry(api, aws, monkeypatch):
    original = generated_report(api, aws)
    uploads_begin_before_midnight(aws, monkeypatch)
    requested = api.call("POST", REEXPORTS, body={"report_id": original["id"]}).json

    run_worker(aws)

    record = api.call("GET", f"{REEXPORTS}/{requested['id']}").json
    job = api.call("GET", f"{JOBS}/{requested['job_id']}").json
    created = last_modified(aws, record["new_file"]["key"])
    assert record["status"] == "succeeded"
    assert record["expires_at"] == job["expires_at"]
    assert parse(record["expires_at"]) == created + retention()
    assert parse(record["expires_at"]) <= lifecycle_deletion(created, retention().days)
    assert record["download_url"] is not None


# --- a result an internal service stored --------------------------------------------------------


def test_a_stored_result_is_refreshed_so_the_lifecycle_keeps_it_until_the_reexports_expiry(api, aws, pending):
    long_ago = datetime.now(UTC) - retention() - timedelta(days=30)  # the lifecycle may delete it any day
    new_file = stored_result(aws, created=long_ago)
    before = datetime.now(UTC).replace(microsecond=0)

    response = put(api, pending["id"], {"expected_version": 1, "new_file": new_file})

    assert response.status == 200, response.body
    record = response.json
    created = last_modified(aws, RESULT_KEY)
    assert created >= before
    assert parse(record["expires_at"]) == created + retention()
    assert parse(record["expires_at"]) <= lifecycle_deletion(created, retention().days)
    assert api.call("GET", f"{JOBS}/{pending['job_id']}").json["expires_at"] is None  # the superseded job has none
    read = api.call("GET", f"{REEXPORTS}/{pending['id']}").json
    assert read["expires_at"] == record["expires_at"]
    assert parse(read["download_expires_at"]) <= parse(record["expires_at"])


def test_the_refresh_keeps_the_files_bytes_headers_and_metadata(api, aws, pending):
    new_file = stored_result(aws, created=datetime.now(UTC) - timedelta(days=400))
    before = aws.s3.head_object(Bucket=aws.bucket, Key=RESULT_KEY)

    assert put(api, pending["id"], {"expected_version": 1, "new_file": new_file}).status == 200

    after = aws.s3.get_object(Bucket=aws.bucket, Key=RESULT_KEY)
    assert hashlib.sha256(after["Body"].read()).hexdigest() == new_file["sha256"]
    for header in ("ContentType", "ContentDisposition", "CacheControl", "Metadata", "ServerSideEncryption"):
        assert after[header] == before[header], header
    assert after["Metadata"] == {"produced-by": "archive-restore", "batch": "42"}


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(None, id="one-copy"),
        # What an object over S3's single-copy limit gets (boto3's managed multipart copy), at a size moto holds.
        pytest.param(TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB), id="multipart"),
    ],
)
def test_a_refreshed_object_is_created_anew_with_its_bytes_and_headers_unchanged(aws, config):
    body = hashlib.sha256(b"seed").digest() * (6 * MIB // 32 + 1)
    stored_result(aws, created=datetime(2020, 1, 1, tzinfo=UTC), body=body)
    head = object_head(aws.s3, bucket=aws.bucket, key=RESULT_KEY)
    options = {} if config is None else {"config": config}

    stored_at = refresh_object(clients.s3(), bucket=aws.bucket, key=RESULT_KEY, head=head, **options)

    after = aws.s3.get_object(Bucket=aws.bucket, Key=RESULT_KEY)
    assert stored_at == after["LastModified"] > datetime(2020, 1, 2, tzinfo=UTC)
    assert after["Body"].read() == body
    for header in ("ContentLength", "ContentType", "ContentDisposition", "CacheControl", "Metadata"):
        assert after[header] == head[header], header


def test_refreshing_an_object_that_is_gone_or_was_replaced_says_so(aws):
    stored_result(aws, created=datetime(2020, 1, 1, tzinfo=UTC))
    head = object_head(aws.s3, bucket=aws.bucket, key=RESULT_KEY)
    aws.s3.put_object(Bucket=aws.bucket, Key=RESULT_KEY, Body=b"x" * len(REPORT_BODY))

    with pytest.raises(ObjectChanged):
        refresh_object(clients.s3(), bucket=aws.bucket, key=RESULT_KEY, head=head)
    aws.s3.delete_object(Bucket=aws.bucket, Key=RESULT_KEY)
    assert refresh_object(clients.s3(), bucket=aws.bucket, key=RESULT_KEY, head=head) is None


# --- a refresh that fails leaves the record as it was -------------------------------------------


def after_the_check(monkeypatch, then):
    """`then` runs once, right after the PUT's own HEAD of the object (before the refresh)."""
    s3 = clients.s3()
    real_head = s3.head_object
    done = []

    def head_then(**request):
        response = real_head(**request)
        if not done:
            done.append(True)
            then()
        return response

    monkeypatch.setattr(s3, "head_object", head_then)


def test_an_object_deleted_before_its_refresh_is_400_and_changes_nothing(api, aws, pending, monkeypatch):
    new_file = stored_result(aws, created=datetime.now(UTC) - timedelta(days=10))
    after_the_check(monkeypatch, lambda: aws.s3.delete_object(Bucket=aws.bucket, Key=RESULT_KEY))

    response = put(api, pending["id"], {"expected_version": 1, "new_file": new_file})

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR"), response.body
    assert "names no stored object" in response.json["error"]["message"]
    unchanged(api, pending)


def test_an_object_replaced_before_its_refresh_is_409_and_changes_nothing(api, aws, pending, monkeypatch):
    new_file = stored_result(aws, created=datetime.now(UTC) - timedelta(days=10))
    other = b"x" * len(REPORT_BODY)  # the same size: only its ETag tells it apart
    after_the_check(monkeypatch, lambda: aws.s3.put_object(Bucket=aws.bucket, Key=RESULT_KEY, Body=other))

    response = put(api, pending["id"], {"expected_version": 1, "new_file": new_file})

    assert (response.status, response.error_code) == (409, "CONCURRENT_UPDATE"), response.body
    unchanged(api, pending)


def test_a_refresh_s3_refuses_is_503_changes_nothing_and_can_be_retried(api, aws, pending, monkeypatch):
    new_file = stored_result(aws, created=datetime.now(UTC) - timedelta(days=10))
    s3 = clients.s3()
    real_copy = s3.copy_object

    def slow_down(**request):
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "CopyObject")

    monkeypatch.setattr(s3, "copy_object", slow_down)

    response = put(api, pending["id"], {"expected_version": 1, "new_file": new_file})

    assert (response.status, response.error_code) == (503, "SERVICE_UNAVAILABLE"), response.body
    assert "try again with the same version" in response.json["error"]["message"]
    unchanged(api, pending)
    monkeypatch.setattr(s3, "copy_object", real_copy)

    retried = put(api, pending["id"], {"expected_version": 1, "new_file": new_file})

    assert (retried.status, retried.json["status"]) == (200, "succeeded"), retried.body
    assert retried.json["expires_at"] is not None
