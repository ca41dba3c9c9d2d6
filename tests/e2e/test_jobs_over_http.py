"""The jobs API end to end, over real sockets: the local gateway, the functions in their own processes,
moto as AWS, the state machine executing, the sample upstream serving rows. Only HTTP is used."""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import re
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from .running_stack import JOBS, RunningStack, wait_for_job

UPSTREAM_ROWS = 50  # the sample upstream's default


def job_request(**overrides: Any) -> dict[str, Any]:
    return {
        "job_type": "FEED_INTAKE_EXPORT",
        "format": "csv",
        "farm_id": "farm-e2e",
        "start_date": "2025-01-01",
        "end_date": "2025-01-31",
        **overrides,
    }


def create(stack: RunningStack, body: dict[str, Any], tenant: str = "tenant-a") -> requests.Response:
    return requests.post(f"{stack.api}{JOBS}", json=body, headers=stack.headers(tenant, "farm_manager"), timeout=10)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def notification_for(stack: RunningStack, job_id: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        items = requests.get(f"{stack.api}/_local/notifications", timeout=10).json()["items"]
        found = [item for item in items if job_id in item["message"]]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no notification for {job_id}:\n{stack.log_tail()}")


def test_health_and_the_swagger_ui_are_served_without_a_token(stack):
    assert requests.get(f"{stack.api}/api/health", timeout=10).json() == {"status": "ok"}
    assert requests.get(f"{stack.api}/api/ready", timeout=10).status_code == 200
    docs = requests.get(f"{stack.api}/api-docs", timeout=10)
    assert docs.status_code == 200
    assert docs.headers["Content-Type"].startswith("text/html")
    assert (
        f"{JOBS}/{{jobId}}/download" in requests.get(f"{stack.api}/api-docs/openapi.json", timeout=10).json()["paths"]
    )


def test_a_job_is_generated_and_its_file_downloads_with_the_recorded_sha256_and_rows(stack):
    # Given a job created through the API
    created = create(stack, job_request(farm_id="farm-lifecycle"))
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    assert created.headers["Location"] == f"{JOBS}/{job_id}"

    # When the worker has generated it
    job = wait_for_job(stack, job_id, {"succeeded", "failed"})

    # Then the presigned URL serves exactly the recorded file, with the upstream's rows in order
    assert job["status"] == "succeeded", job
    download = requests.get(f"{stack.api}{JOBS}/{job_id}/download", headers=stack.headers(), timeout=10)
    assert download.status_code == 200, download.text
    url = download.json()["download_url"]
    assert url.startswith(f"{stack.aws}/"), "presigned URLs point at the local AWS endpoint"
    content = requests.get(url, timeout=10).content
    assert sha256(content) == job["sha256"]
    assert len(content) == job["size_bytes"]
    rows = list(csv.reader(io.StringIO(content.decode())))
    assert len(rows) - 1 == job["row_count"] == UPSTREAM_ROWS
    assert [row[0] for row in rows[1:]] == [f"rec-{index:08d}" for index in range(UPSTREAM_ROWS)]

    # And a second run over the same period and scope gives the very same bytes
    again = create(stack, job_request(farm_id="farm-lifecycle")).json()["id"]
    assert wait_for_job(stack, again, {"succeeded", "failed"})["sha256"] == job["sha256"]


def test_the_notification_arrives_and_its_signed_link_redirects_to_the_file(stack):
    job_id = create(stack, job_request(farm_id="farm-notified")).json()["id"]
    job = wait_for_job(stack, job_id, {"succeeded", "failed"})

    notification = notification_for(stack, job_id)

    assert notification["topic"] == "ReportTopic"
    assert notification["subject"].startswith("Report ready")
    assert notification["attributes"] == {
        "tenant_id": "tenant-a",
        "status": "succeeded",
        "job_type": job["job_type"],
        "carries_link": "true",
    }
    link = re.search(r"Download: (\S+)", notification["message"]).group(1)
    assert link.startswith(f"{stack.api}{JOBS}/{job_id}/file?token="), "links in e-mails point at the local gateway"
    redirect = requests.get(link, allow_redirects=False, timeout=10)  # no bearer token: the link is the credential
    assert redirect.status_code == 302
    assert redirect.headers["Location"].startswith(f"{stack.aws}/")
    assert sha256(requests.get(redirect.headers["Location"], timeout=10).content) == job["sha256"]


def test_a_running_job_is_cancelled_on_request(knobs):
    stack = knobs
    stack.knobs(rows=4000, page_size_cap=100, delay_sec=0.2)  # about eight seconds of pages
    job_id = create(stack, job_request(farm_id="farm-cancelled")).json()["id"]
    wait_for_job(stack, job_id, {"running"})

    cancel = requests.delete(f"{stack.api}{JOBS}/{job_id}", headers=stack.headers(), timeout=10)

    assert cancel.status_code == 202, cancel.text
    assert cancel.json()["cancel_requested"] is True
    assert wait_for_job(stack, job_id, {"cancelled", "succeeded", "failed"})["status"] == "cancelled"
    not_ready = requests.get(f"{stack.api}{JOBS}/{job_id}/download", headers=stack.headers(), timeout=10)
    assert not_ready.status_code == 409
    assert not_ready.json()["error"]["code"] == "REPORT_NOT_READY"


def test_a_report_the_upstream_counts_above_a_billion_rows_is_refused_at_create(knobs):
    stack = knobs
    stack.knobs(rows=1_000_000_001)  # the template's MaxReportRows is 1,000,000,000
    body = job_request(farm_id="farm-too-large", idempotency_key=f"e2e-{uuid.uuid4()}")

    refused = create(stack, body)

    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "REPORT_TOO_LARGE"
    assert "1,000,000,001 rows" in refused.json()["error"]["message"]
    listed = requests.get(f"{stack.api}{JOBS}", headers=stack.headers(), timeout=10).json()["items"]
    assert [job for job in listed if job["farm_id"] == "farm-too-large"] == []
    # Nothing was written: once the report fits, the same request (the same key) makes its job.
    stack.knobs(rows=UPSTREAM_ROWS)
    made = create(stack, body)
    assert made.status_code == 201, made.text
    assert wait_for_job(stack, made.json()["id"], {"succeeded", "failed"})["status"] == "succeeded"


def test_a_retried_create_with_the_same_idempotency_key_returns_the_same_job(stack):
    body = job_request(farm_id="farm-retried", idempotency_key=f"e2e-{uuid.uuid4()}")
    first = create(stack, body)

    retried = create(stack, body)
    conflicting = create(stack, {**body, "end_date": "2025-01-30"})

    assert first.status_code == 201, first.text
    assert retried.status_code == 200
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["id"] == first.json()["id"]
    assert conflicting.status_code == 409
    assert conflicting.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_another_tenant_cannot_see_read_download_or_cancel_a_job(stack):
    job_id = create(stack, job_request(farm_id="farm-isolated"), tenant="tenant-a").json()["id"]
    other = stack.headers("tenant-b", "tenant_admin")

    for method, path in [("GET", ""), ("GET", "/download"), ("DELETE", "")]:
        response = requests.request(method, f"{stack.api}{JOBS}/{job_id}{path}", headers=other, timeout=10)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "NOT_FOUND"
    listed_for_b = requests.get(f"{stack.api}{JOBS}?limit=100", headers=other, timeout=10).json()["items"]
    listed_for_a = requests.get(f"{stack.api}{JOBS}?limit=100", headers=stack.headers(), timeout=10).json()["items"]
    assert job_id not in {job["id"] for job in listed_for_b}
    assert job_id in {job["id"] for job in listed_for_a}


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{header}.{payload}.{flipped}"


@pytest.mark.parametrize(
    "bad_token",
    [
        pytest.param(lambda stack: _tampered(stack.token()), id="bad-signature"),
        pytest.param(
            lambda stack: stack.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            id="another-key",
        ),
        pytest.param(lambda stack: stack.token(audience="someone-else"), id="wrong-audience"),
        pytest.param(lambda stack: stack.token(issuer="https://issuer.example"), id="wrong-issuer"),
        pytest.param(lambda stack: stack.token(ttl_sec=-60), id="expired"),
        pytest.param(lambda stack: "", id="missing"),
    ],
)
def test_the_jwt_authorizer_refuses_tokens_it_cannot_trust(stack, bad_token):
    headers = {"Authorization": f"Bearer {bad_token(stack)}"}

    response = requests.get(f"{stack.api}{JOBS}", headers=headers, timeout=10)

    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}  # API Gateway's answer: the function is never called
    assert re.fullmatch(r"[A-Za-z0-9+/]{10,}", response.headers["apigw-requestid"])  # what a caller quotes
    assert requests.get(f"{stack.api}{JOBS}", headers=stack.headers(), timeout=10).status_code == 200


def test_a_route_the_template_does_not_declare_is_404(stack):
    response = requests.get(f"{stack.api}/api/v1/nothing-here", headers=stack.headers(), timeout=10)

    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}
    assert response.headers["apigw-requestid"]


def test_two_authorization_headers_are_one_token_that_fails(stack: RunningStack):
    # API Gateway joins a repeated header with a comma: neither token, alone, is what the authorizer reads.
    address = urlsplit(stack.api)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
    connection.putrequest("GET", JOBS)
    connection.putheader("Authorization", f"Bearer {stack.token('tenant-a')}")
    connection.putheader("Authorization", f"Bearer {stack.token('tenant-b')}")
    connection.endheaders()
    response = connection.getresponse()

    assert response.status == 401, response.read()
    connection.close()
