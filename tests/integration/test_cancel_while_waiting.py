"""A cancel is seen while the generator waits on a slow upstream page, not only after it, and a cancel
asked for before a failure ends the job cancelled."""

from __future__ import annotations

import threading
import time

import pytest

from report_export.generation.generator import upstream_client
from report_export.generation.sources import UpstreamUnavailable

from conftest import LambdaContextStub
from support.reexports import run_worker
from support.worker import deliver_once

JOBS = "/api/v1/reports/jobs"
PAGE_SECONDS = 6.0


def wait_for_status(api, job_id: str, status: str, *, within: float) -> dict:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        job = api.call("GET", f"{JOBS}/{job_id}").json
        if job["status"] == status:
            return job
        time.sleep(0.05)
    raise AssertionError(f"the job did not become {status} within {within} s: {job}")


@pytest.mark.reliability(
    scenario="Cancel while the upstream is slow",
    injected="6 s per upstream page; DELETE while the first page is on its way",
    checked="the job ends cancelled before the page arrives; no file, no open upload",
)
def test_a_cancel_while_a_page_is_slow_ends_the_job_before_the_page_arrives(api, serialized_aws, upstream, measured):
    from generator.handler import lambda_handler

    upstream.knobs.rows = 3000
    upstream.knobs.delay_sec = PAGE_SECONDS
    job_id = api.create_job().json["id"]
    worker = threading.Thread(
        target=deliver_once,
        args=(serialized_aws.sqs, serialized_aws.queue_url, lambda_handler, LambdaContextStub()),
        daemon=True,
    )
    worker.start()
    wait_for_status(api, job_id, "running", within=30)

    asked = time.monotonic()
    assert api.call("DELETE", f"{JOBS}/{job_id}").status == 202
    job = wait_for_status(api, job_id, "cancelled", within=PAGE_SECONDS)
    seen_after = time.monotonic() - asked
    worker.join(timeout=60)

    measured["cancel seen after"] = f"{seen_after:.1f} s (page: {PAGE_SECONDS:.0f} s)"
    assert seen_after < PAGE_SECONDS, seen_after  # the first page was still on its way
    assert job["cancel_requested"] is True
    assert serialized_aws.s3.list_multipart_uploads(Bucket=serialized_aws.bucket).get("Uploads", []) == []
    assert serialized_aws.s3.list_objects_v2(Bucket=serialized_aws.bucket).get("KeyCount", 0) == 0


@pytest.mark.reliability(
    scenario="Cancel, then the upstream fails",
    injected="a DELETE, then UPSTREAM_UNAVAILABLE from the next page",
    checked="the job ends cancelled, not failed",
)
def test_a_cancel_asked_for_before_the_upstream_failed_ends_the_job_cancelled(api, aws, monkeypatch):
    job_id = api.create_job().json["id"]
    real_pages = upstream_client().pages

    def cancel_then_fail(definition, job):
        for page in real_pages(definition, job):
            yield page
            assert api.call("DELETE", f"{JOBS}/{job_id}").status == 202
            raise UpstreamUnavailable("the upstream stopped answering")

    monkeypatch.setattr(upstream_client(), "pages", cancel_then_fail)

    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["cancel_requested"], job["error_code"]) == ("cancelled", True, None)
