"""A report that outgrows one invocation goes on in the next, and ends as the file one invocation writes.

GENERATION_LEG_SEC=0 makes every invocation hand over after one page: a 50k-row report (50 pages) then
takes 50 invocations, each a real SQS delivery to the generator handler, each resuming from the
checkpoint the one before it saved (the job item's JSON and the bytes beside the file in S3).
"""

import hashlib

import pytest
from test_generation import JOBS, run_worker, stored_object

from report_export.core.models.common import format_timestamp, now_utc
from report_export.core.settings import get_settings
from report_export.generation import generator as generation
from report_export.sweeping.sweeper import sweeper

from conftest import LambdaContextStub, valid_job_request
from support.sweeping import expire_the_lease
from support.tables import job_repository
from support.worker import deliver_once

ROWS = 50_000


@pytest.fixture
def leg_seconds(monkeypatch):
    def set_to(seconds: float, *, slices: int = 1) -> None:
        monkeypatch.setenv("GENERATION_LEG_SEC", str(seconds))
        monkeypatch.setenv("SOURCE_CONCURRENCY", str(slices))
        get_settings.cache_clear()
        generation.reset()

    return set_to


def handler():
    from generator.handler import lambda_handler

    return lambda_handler


def deliver(aws):
    return deliver_once(aws.sqs, aws.queue_url, handler(), LambdaContextStub(remaining_ms=900_000))


def leftovers(aws, job_id):
    prefix = f"tenants/tenant-a/jobs/{job_id}/"
    objects = [item["Key"] for item in aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix=prefix).get("Contents", [])]
    uploads = aws.s3.list_multipart_uploads(Bucket=aws.bucket, Prefix=prefix).get("Uploads", [])
    return objects, uploads


def export(api, aws, request):
    job_id = api.create_job(valid_job_request(**request)).json["id"]
    deliveries, progress = 0, []
    while deliver(aws) is not None:
        deliveries += 1
        job = api.call("GET", f"{JOBS}/{job_id}").json
        progress.append((job["status"], job["phase"], job["progress_pct"], job["rows_written"]))
    aws.wait_for_executions()
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert job["status"] == "succeeded", job
    return job, stored_object(aws, job)[1], deliveries, progress


@pytest.mark.parametrize(
    ("fmt", "compression", "slices"),
    [("csv", None, 1), ("json", None, 1), ("csv", "gzip", 1), ("json", "gzip", 1), ("csv", None, 4)],
)
def test_a_report_written_over_many_invocations_is_the_file_one_invocation_writes(
    api, aws, upstream, leg_seconds, fmt, compression, slices
):
    if slices > 1:
        upstream.knobs.rows_per_day = ROWS // 31  # slices join into the whole report
    else:
        upstream.knobs.rows = ROWS
    request = {"format": fmt, "compression": compression, "end_date": "2025-01-31"}

    leg_seconds(600, slices=slices)
    whole, whole_body, whole_deliveries, _ = export(api, aws, request)
    leg_seconds(0, slices=slices)
    pieced, pieced_body, deliveries, progress = export(api, aws, request)

    assert whole_deliveries == 1
    assert deliveries >= 10
    assert pieced_body == whole_body
    assert (pieced["sha256"], pieced["size_bytes"], pieced["row_count"]) == (
        whole["sha256"],
        whole["size_bytes"],
        whole["row_count"],
    )
    assert pieced["sha256"] == hashlib.sha256(pieced_body).hexdigest()
    assert pieced["row_count"] >= ROWS - 31
    between = progress[:-1]
    assert {(status, phase) for status, phase, _, _ in between} == {("running", "continuing")}
    percents = [percent for _, _, percent, _ in progress]
    rows = [written for _, _, _, written in progress]
    assert percents == sorted(percents) and rows == sorted(rows), progress
    # Only the file is left: no checkpoint's bytes, no open upload.
    assert leftovers(aws, pieced["id"]) == ([pieced["file_path"]], [])


@pytest.mark.reliability(
    scenario="Cancel between two invocations",
    injected="a DELETE while a report is between two invocations (left at a checkpoint)",
    checked="the next invocation ends it cancelled; no file, no checkpoint, no open upload",
)
def test_a_cancel_between_two_invocations_ends_the_job_with_nothing_left(api, aws, upstream, leg_seconds):
    upstream.knobs.rows = 12_000
    leg_seconds(0)
    job_id = api.create_job(valid_job_request(format="csv")).json["id"]
    for _ in range(3):
        deliver(aws)
    assert api.call("GET", f"{JOBS}/{job_id}").json["phase"] == "continuing"

    assert api.call("DELETE", f"{JOBS}/{job_id}").status == 202
    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert job["status"] == "cancelled", job
    assert leftovers(aws, job_id) == ([], [])


def test_a_cancel_during_an_invocation_that_goes_on_from_a_checkpoint_ends_the_job_with_nothing_left(
    api, aws, upstream, leg_seconds, monkeypatch
):
    upstream.knobs.rows = 12_000
    leg_seconds(0)
    job_id = api.create_job(valid_job_request(format="csv")).json["id"]
    deliver(aws)
    deliver(aws)
    leg_seconds(600)
    answer = upstream._answer
    asked = [0]

    def cancel_on_a_later_page(path, query, headers):
        asked[0] += 1
        if asked[0] == 3:
            assert api.call("DELETE", f"{JOBS}/{job_id}").status == 202
        return answer(path, query, headers)

    monkeypatch.setattr(upstream, "_answer", cancel_on_a_later_page)
    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert job["status"] == "cancelled", job
    assert asked[0] < 10  # it stopped, rather than reading the rest
    assert leftovers(aws, job_id) == ([], [])


@pytest.mark.reliability(
    scenario="Lost wake-up between invocations",
    injected="the next invocation's wake-up purged from the queue, the lease run out",
    checked="the sweeper wakes the job instead of failing it; the file is the one-invocation run's, byte for byte",
)
def test_a_job_between_invocations_whose_wake_up_is_lost_is_woken_by_the_sweeper_not_failed(
    api, aws, upstream, leg_seconds
):
    upstream.knobs.rows = 6_000
    leg_seconds(600)
    whole, whole_body, _, _ = export(api, aws, {"format": "csv"})
    leg_seconds(0)
    job_id = api.create_job(valid_job_request(format="csv")).json["id"]
    deliver(aws)
    aws.sqs.purge_queue(QueueUrl=aws.queue_url)  # the next invocation's wake-up is lost
    expire_the_lease(aws, "tenant-a", job_id)

    swept = sweeper().sweep()

    assert (swept.continued, swept.failed, swept.requeued) == (1, 0, 0)
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["phase"]) == ("running", "continuing")
    run_worker(aws)
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert job["status"] == "succeeded", job
    assert (job["sha256"], job["row_count"]) == (whole["sha256"], whole["row_count"])
    assert stored_object(aws, job)[1] == whole_body


def test_a_job_between_invocations_out_of_attempts_is_failed_by_the_sweeper_and_its_pieces_discarded(
    api, aws, upstream, leg_seconds, monkeypatch
):
    upstream.knobs.rows = 30_000
    leg_seconds(0)
    job_id = api.create_job(valid_job_request(format="csv")).json["id"]
    for _ in range(3):
        deliver(aws)
    [kept], _ = leftovers(aws, job_id)
    assert "/checkpoints/" in kept
    aws.sqs.purge_queue(QueueUrl=aws.queue_url)
    now = format_timestamp(now_utc())
    assert job_repository().resume("tenant-a", job_id, now=now, lease_until=now) is not None  # taken, then died
    monkeypatch.setenv("MAX_ATTEMPTS", "1")
    get_settings.cache_clear()
    sweeper.cache_clear()
    expire_the_lease(aws, "tenant-a", job_id)

    swept = sweeper().sweep()
    aws.wait_for_executions()

    assert swept.failed == 1
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["error_code"]) == ("failed", "LEASE_EXPIRED")
    assert leftovers(aws, job_id) == ([], [])


def test_a_file_beyond_the_largest_s3_object_the_plan_allows_fails_the_job_with_its_own_code(
    api, aws, upstream, monkeypatch
):
    from report_export.aws import multipart

    monkeypatch.setattr(multipart, "MAX_PARTS", 1)  # as if the file had reached 10,000 parts
    upstream.knobs.rows = 120_000  # about 14 MB of CSV: a second part
    job_id = api.create_job(valid_job_request(format="csv")).json["id"]

    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["error_code"]) == ("failed", "REPORT_TOO_LARGE"), job
    assert "GiB" in job["error_message"]
    assert leftovers(aws, job_id) == ([], [])
