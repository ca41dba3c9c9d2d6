"""Downloads: `GET …/{jobId}/download` (JWT, presigned URL) and `GET …/{jobId}/file?token=` (signed link, 302).

Reports are generated for real (API → SQS → generator → S3 → state machine, all in moto) and the
presigned URLs are fetched through moto, so a test fails if the URL does not give back the file.
"""

import hashlib
import json
import os
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from report_export.aws.secrets import secret_source
from report_export.core.models.common import canonical_json, format_timestamp, now_utc
from report_export.core.settings import get_settings
from report_export.core.signing import Signer, b64url_decode, b64url_encode
from report_export.jobs.downloads import download_service
from report_export.jobs.links import DOWNLOAD_TOKEN_PURPOSE, DownloadGrant, DownloadTokens

from conftest import LambdaContextStub
from support.events import http_event
from support.tables import job_repository
from support.worker import deliver_once

JOBS = "/api/v1/reports/jobs"
READERS = ["tenant_admin", "farm_manager", "house_operator", "viewer"]
UNKNOWN_JOB_ID = "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f"
AUDIT_MESSAGE = "Download URL issued"


def generator_handler():
    from generator.handler import lambda_handler

    return lambda_handler


def run_worker(aws):
    """Deliver until the queue is empty, then let every store-and-notify execution finish."""
    while deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub()) is not None:
        pass
    return aws.wait_for_executions()


@pytest.fixture
def ready_job(api, aws, upstream):
    """A job generated all the way to succeeded, as the API shows it."""
    upstream.knobs.rows = 120
    job_id = api.create_job().json["id"]
    executions = run_worker(aws)
    assert [execution["status"] for execution in executions] == ["SUCCEEDED"]
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert job["status"] == "succeeded"
    return job


def tokens():
    return DownloadTokens(Signer(secret_source(os.environ["SIGNING_SECRET_PARAMETER"]), purpose=DOWNLOAD_TOKEN_PURPOSE))


def mint(job_id, *, tenant="tenant-a", expires_in=timedelta(hours=1)):
    return tokens().issue(DownloadGrant(tenant_id=tenant, job_id=job_id, expires_at=now_utc() + expires_in))


def follow_link(api, job_id, token, **kwargs):
    return api.call("GET", f"{JOBS}/{job_id}/file", authenticated=False, query={"token": token}, **kwargs)


def fetch(url):
    """GET a presigned URL; moto answers it in process."""
    response = requests.get(url, timeout=5)
    assert response.status_code == 200, response.text
    return response


def parse_timestamp(text):
    assert text.endswith("Z")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_error(response, status, code):
    assert response.status == status, response.body
    assert response.headers["content-type"].startswith("application/json")
    error = response.json["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["traceId"]


def audit_records(caplog):
    return [record for record in caplog.records if record.getMessage() == AUDIT_MESSAGE]


def assert_presigned_for(url, aws, job, *, ttl=900):
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert aws.bucket in parts.netloc + parts.path
    assert unquote(parts.path).endswith("/" + job["file_path"])
    assert query["response-content-disposition"] == [f'attachment; filename="{job["file_name"]}"']
    assert query["X-Amz-Expires"] == [str(ttl)]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "X-Amz-Signature" in query


def set_job_attribute(aws, job, name, value):
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key={"PK": {"S": f"TENANT#{job['tenant_id']}"}, "SK": {"S": f"JOB#{job['id']}"}},
        UpdateExpression="SET #name = :value",
        ExpressionAttributeNames={"#name": name},
        ExpressionAttributeValues={":value": {"S": value}},
    )


def job_in_status(api, aws, upstream, status):
    """A job of tenant-a left in the given unfinished state."""
    if status == "failed":
        upstream.knobs.always_fail_with = 400
    job_id = api.create_job().json["id"]
    if status == "running":
        now = now_utc()
        claimed = job_repository().claim(
            "tenant-a", job_id, now=format_timestamp(now), lease_until=format_timestamp(now + timedelta(minutes=15))
        )
        assert claimed is not None
    elif status == "failed":
        run_worker(aws)
    elif status == "cancelled":
        assert api.call("DELETE", f"{JOBS}/{job_id}").status == 200
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert job["status"] == status
    return job


# --- GET …/download ---------------------------------------------------------------------------


def test_download_gives_a_presigned_url_that_serves_the_exact_file(api, aws, ready_job):
    before = datetime.now(UTC)

    response = api.call("GET", f"{JOBS}/{ready_job['id']}/download")

    assert response.status == 200, response.body
    link = response.json
    assert set(link) == {"download_url", "expires_at"}
    assert_presigned_for(link["download_url"], aws, ready_job)
    expires_at = parse_timestamp(link["expires_at"])
    assert before + timedelta(seconds=899) <= expires_at <= datetime.now(UTC) + timedelta(seconds=901)
    file = fetch(link["download_url"])
    assert hashlib.sha256(file.content).hexdigest() == ready_job["sha256"]
    assert len(file.content) == ready_job["size_bytes"]
    assert file.headers["Content-Disposition"] == f'attachment; filename="{ready_job["file_name"]}"'
    assert file.headers["Content-Type"] == ready_job["mime_type"]


def test_download_ttl_follows_report_download_ttl_sec(api, aws, ready_job, monkeypatch):
    monkeypatch.setenv("REPORT_DOWNLOAD_TTL_SEC", "120")
    get_settings.cache_clear()
    download_service.cache_clear()
    before = datetime.now(UTC)

    link = api.call("GET", f"{JOBS}/{ready_job['id']}/download").json

    assert_presigned_for(link["download_url"], aws, ready_job, ttl=120)
    expires_at = parse_timestamp(link["expires_at"])
    assert before + timedelta(seconds=119) <= expires_at <= datetime.now(UTC) + timedelta(seconds=121)


@pytest.mark.parametrize("role", READERS)
def test_every_reader_role_may_download(api, ready_job, role):
    response = api.call("GET", f"{JOBS}/{ready_job['id']}/download", roles=f"[{role}]", sub=f"{role}-user")

    assert response.status == 200, response.body
    assert response.json["download_url"].startswith("https://")


@pytest.mark.parametrize("roles", ["[auditor]", None])
def test_a_token_without_a_reader_role_is_403(api, ready_job, roles, caplog):
    response = api.call("GET", f"{JOBS}/{ready_job['id']}/download", roles=roles)

    assert_error(response, 403, "FORBIDDEN")
    assert "download_url" not in response.body
    assert audit_records(caplog) == []


def test_no_token_is_401(api, ready_job):
    response = api.call("GET", f"{JOBS}/{ready_job['id']}/download", authenticated=False)

    assert_error(response, 401, "UNAUTHORIZED")


def test_another_tenants_job_is_404_as_if_it_did_not_exist(api, ready_job, caplog):
    response = api.call("GET", f"{JOBS}/{ready_job['id']}/download", tenant="tenant-b")

    assert_error(response, 404, "NOT_FOUND")
    assert ready_job["file_path"] not in response.body
    assert audit_records(caplog) == []


@pytest.mark.parametrize("job_id", [UNKNOWN_JOB_ID, "not-a-job-id"])
def test_an_unknown_job_is_404(api, job_id):
    response = api.call("GET", f"{JOBS}/{job_id}/download")

    assert_error(response, 404, "NOT_FOUND")


@pytest.mark.parametrize("status", ["queued", "running", "failed", "cancelled"])
def test_a_job_without_a_file_is_409_report_not_ready(api, aws, upstream, status, caplog):
    job = job_in_status(api, aws, upstream, status)

    response = api.call("GET", f"{JOBS}/{job['id']}/download", roles="[viewer]")

    assert_error(response, 409, "REPORT_NOT_READY")
    assert status in response.json["error"]["message"]
    assert audit_records(caplog) == []


def test_an_expired_report_is_410_report_expired(api, aws, ready_job):
    set_job_attribute(aws, ready_job, "expires_at", format_timestamp(now_utc() - timedelta(seconds=1)))

    response = api.call("GET", f"{JOBS}/{ready_job['id']}/download")

    assert_error(response, 410, "REPORT_EXPIRED")


def test_a_url_minted_shortly_before_the_expiry_lives_only_until_it(api, aws, ready_job):
    expiry = now_utc() + timedelta(seconds=100)
    set_job_attribute(aws, ready_job, "expires_at", format_timestamp(expiry))

    link = api.call("GET", f"{JOBS}/{ready_job['id']}/download").json

    [ttl] = parse_qs(urlsplit(link["download_url"]).query)["X-Amz-Expires"]
    assert 90 <= int(ttl) <= 100
    assert parse_timestamp(link["expires_at"]) <= expiry


def test_a_report_whose_file_was_deleted_is_410_report_file_gone(api, aws, ready_job):
    aws.s3.delete_object(Bucket=aws.bucket, Key=ready_job["file_path"])

    response = api.call("GET", f"{JOBS}/{ready_job['id']}/download")

    assert_error(response, 410, "REPORT_FILE_GONE")


def test_each_download_is_an_audit_event_naming_job_and_caller(api, ready_job, caplog):
    caplog.clear()

    for _ in range(2):
        assert api.call("GET", f"{JOBS}/{ready_job['id']}/download", sub="auditor-7").status == 200

    records = audit_records(caplog)
    assert len(records) == 2
    for record in records:
        assert record.audit == "download_url_issued"
        assert record.job_id == ready_job["id"]
        assert record.issued_to == "auditor-7"
        assert record.via == "api"


# --- GET …/file?token= ------------------------------------------------------------------------


def test_the_link_in_the_notification_redirects_to_the_file(api, aws, ready_job):
    [notification] = aws.notifications()
    match = re.search(r"Download: (\S+)", notification["Message"])
    assert match, notification["Message"]
    link = urlsplit(match.group(1))
    assert f"{link.scheme}://{link.netloc}" == os.environ["PUBLIC_API_URL"]
    assert link.path == f"{JOBS}/{ready_job['id']}/file"
    [token] = parse_qs(link.query)["token"]

    response = follow_link(api, ready_job["id"], token)

    assert response.status == 302, response.body
    location = response.headers["location"]
    assert_presigned_for(location, aws, ready_job)
    assert hashlib.sha256(fetch(location).content).hexdigest() == ready_job["sha256"]


def test_a_minted_link_needs_no_jwt_and_each_use_is_an_audit_event(api, aws, ready_job, caplog):
    token = mint(ready_job["id"])
    caplog.clear()

    first = follow_link(api, ready_job["id"], token)
    second = follow_link(api, ready_job["id"], token)

    assert (first.status, second.status) == (302, 302)
    assert_presigned_for(first.headers["location"], aws, ready_job)
    records = audit_records(caplog)
    assert [(record.job_id, record.issued_to, record.via) for record in records] == [
        (ready_job["id"], "signed-link", "link")
    ] * 2


def test_a_link_works_whatever_jwt_comes_with_it(api, aws, ready_job):
    response = api.call(
        "GET",
        f"{JOBS}/{ready_job['id']}/file",
        tenant="tenant-b",
        roles="[auditor]",
        query={"token": mint(ready_job["id"])},
    )

    assert response.status == 302, response.body
    assert_presigned_for(response.headers["location"], aws, ready_job)


def tampered_tokens(job_id, other_job_id):
    token = mint(job_id)
    payload, signature = token.split(".")
    claims = b64url_decode(payload)
    decoded = json.loads(claims)
    longer = canonical_json({**decoded, "exp": decoded["exp"] + 365 * 86400}).encode()
    other_job = canonical_json({**decoded, "job": other_job_id}).encode()
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    cursor_key = Signer(secret_source(os.environ["SIGNING_SECRET_PARAMETER"]), purpose="list-cursor")
    link_key = Signer(secret_source(os.environ["SIGNING_SECRET_PARAMETER"]), purpose=DOWNLOAD_TOKEN_PURPOSE)

    def signed(payload: bytes) -> str:
        # Genuinely signed, and still not a link: what a key shared with another tool could make.
        return f"{b64url_encode(payload)}.{link_key.sign(payload)}"

    return {
        **{
            f"signed_exp_{name}": signed(canonical_json({**decoded, "exp": value}).encode())
            for name, value in [("text", "soon"), ("float", 1.5e12), ("huge", 10**30), ("null", None), ("true", True)]
        },
        "signed_without_exp": signed(canonical_json({"tenant": decoded["tenant"], "job": job_id}).encode()),
        "signed_not_json": signed(b"not json"),
        "signed_a_list": signed(b"[1, 2]"),
        "longer_expiry": f"{b64url_encode(longer)}.{signature}",
        "other_job": f"{b64url_encode(other_job)}.{signature}",
        "flipped_signature": f"{payload}.{flipped}",
        "no_signature": payload,
        "empty_signature": f"{payload}.",
        "extra_part": f"{token}.x",
        "signed_for_another_purpose": f"{payload}.{cursor_key.sign(claims)}",
        "garbage": "!!!.???",
        "not_base64": "é.é",
        "non_ascii_signature": f"{payload}.{signature[:-1]}é",
    }


@pytest.mark.parametrize(
    "kind",
    [
        "longer_expiry",
        "other_job",
        "flipped_signature",
        "no_signature",
        "empty_signature",
        "extra_part",
        "signed_for_another_purpose",
        "garbage",
        "not_base64",
        "non_ascii_signature",
        "signed_exp_text",
        "signed_exp_float",
        "signed_exp_huge",
        "signed_exp_null",
        "signed_exp_true",
        "signed_without_exp",
        "signed_not_json",
        "signed_a_list",
    ],
)
def test_a_forged_or_tampered_link_is_401(api, ready_job, kind, caplog):
    other_job_id = api.create_job().json["id"]
    token = tampered_tokens(ready_job["id"], other_job_id)[kind]
    target = other_job_id if kind == "other_job" else ready_job["id"]

    response = follow_link(api, target, token)

    assert_error(response, 401, "UNAUTHORIZED")
    assert "location" not in response.headers
    assert audit_records(caplog) == []


def test_an_expired_link_is_401_link_expired(api, ready_job):
    token = mint(ready_job["id"], expires_in=-timedelta(seconds=5))

    response = follow_link(api, ready_job["id"], token)

    assert_error(response, 401, "LINK_EXPIRED")
    assert "location" not in response.headers


def test_a_valid_link_for_another_job_is_403(api, ready_job):
    other_job_id = api.create_job().json["id"]

    response = follow_link(api, ready_job["id"], mint(other_job_id))

    assert_error(response, 403, "FORBIDDEN")
    assert "location" not in response.headers


def test_a_link_naming_another_tenant_does_not_reach_this_tenants_job(api, ready_job):
    response = follow_link(api, ready_job["id"], mint(ready_job["id"], tenant="tenant-b"))

    assert_error(response, 404, "NOT_FOUND")


def test_a_link_without_a_token_is_refused(api, ready_job):
    response = api.call("GET", f"{JOBS}/{ready_job['id']}/file", authenticated=False)

    assert_error(response, 400, "VALIDATION_ERROR")


def test_a_link_for_a_job_that_is_not_ready_is_409(api, aws, upstream):
    job = job_in_status(api, aws, upstream, "queued")

    response = follow_link(api, job["id"], mint(job["id"]))

    assert_error(response, 409, "REPORT_NOT_READY")


def test_a_link_to_an_expired_report_is_410(api, aws, ready_job):
    set_job_attribute(aws, ready_job, "expires_at", format_timestamp(now_utc() - timedelta(minutes=1)))

    response = follow_link(api, ready_job["id"], mint(ready_job["id"]))

    assert_error(response, 410, "REPORT_EXPIRED")


def test_a_link_to_a_deleted_file_is_410(api, aws, ready_job):
    aws.s3.delete_object(Bucket=aws.bucket, Key=ready_job["file_path"])

    response = follow_link(api, ready_job["id"], mint(ready_job["id"]))

    assert_error(response, 410, "REPORT_FILE_GONE")


def test_the_error_trace_id_is_the_request_id(api, ready_job):
    event = http_event("GET", f"{JOBS}/{ready_job['id']}/file", query={"token": "forged.token"})

    response = api.invoke(event)

    assert_error(response, 401, "UNAUTHORIZED")
    assert response.json["error"]["traceId"] == event["requestContext"]["requestId"]


@pytest.mark.parametrize("respell", ["nul", "padding", "comma", "signature padding"])
def test_a_link_token_spelled_another_way_is_refused_and_not_logged(api, ready_job, caplog, respell):
    # One grant has one text: a token with a character slipped in is not another way to download.
    payload, signature = mint(ready_job["id"]).split(".")
    token = {
        "nul": f"{payload[:5]}\x00{payload[5:]}.{signature}",
        "padding": f"{payload}==.{signature}",
        "comma": f"{payload[:5]},{payload[5:]}.{signature}",
        "signature padding": f"{payload}.{signature}==",
    }[respell]

    response = follow_link(api, ready_job["id"], token)

    assert_error(response, 401, "UNAUTHORIZED")
    assert audit_records(caplog) == []
