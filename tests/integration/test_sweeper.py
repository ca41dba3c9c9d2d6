"""The sweeper against the emulated account: expired leases, lost wake-ups and dead letters end up
finished, each once, through the same job-ending path as everything else."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta

import pytest

from report_export.aws import clients
from report_export.core.models.common import format_timestamp, now_utc
from report_export.sweeping.sweeper import sweeper

from conftest import valid_job_request
from support.reexports import JOBS, REEXPORTS, put_succeeded_report, run_worker
from support.sweeping import expire_the_lease, forget_when_the_job_was_queued
from support.tables import job_repository


def claim(job_id: str, tenant: str = "tenant-a"):
    now = now_utc()
    claimed = job_repository().claim(tenant, job_id, now=format_timestamp(now), lease_until="2099-01-01T00:00:00.000Z")
    assert claimed is not None
    return claimed


def job(api, job_id: str) -> dict:
    return api.call("GET", f"{JOBS}/{job_id}").json


def a_worker_died_mid_run(api, aws) -> str:
    """A job claimed by a worker that never came back: its wake-up gone, its lease run out."""
    job_id = api.create_job().json["id"]
    for message in aws.receive_all(aws.queue_url):
        aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    claim(job_id)
    expire_the_lease(aws, "tenant-a", job_id)
    return job_id


@pytest.mark.reliability(
    scenario="A worker that died mid-run",
    injected="a claimed job whose lease ran out (its worker gone)",
    checked="the sweeper requeues it; a later attempt finishes it with exactly one file",
)
def test_a_job_whose_worker_died_is_requeued_and_a_later_attempt_finishes_it_with_one_file(api, aws):
    job_id = a_worker_died_mid_run(api, aws)

    report = sweeper().sweep()
    requeued = job(api, job_id)
    executions = run_worker(aws)

    assert (report.requeued, report.failed) == (1, 0)
    assert requeued["status"] == "queued"
    assert [execution["status"] for execution in executions] == ["SUCCEEDED"]
    finished = job(api, job_id)
    assert finished["status"] == "succeeded"
    assert f"/{job_id}/2/" in finished["file_path"]  # the second attempt's
    keys = [item["Key"] for item in aws.s3.list_objects_v2(Bucket=aws.bucket).get("Contents", [])]
    assert keys == [finished["file_path"]]


def test_the_next_attempt_aborts_the_upload_a_dead_worker_left_open_and_only_that(api, aws):
    job_id = a_worker_died_mid_run(api, aws)
    other_job = api.create_job(valid_job_request(idempotency_key="another-job")).json["id"]
    left_open = aws.s3.create_multipart_upload(Bucket=aws.bucket, Key=f"tenants/tenant-a/jobs/{job_id}/1/part.csv")
    other = aws.s3.create_multipart_upload(Bucket=aws.bucket, Key=f"tenants/tenant-a/jobs/{other_job}/1/part.csv")

    sweeper().sweep()
    run_worker(aws)

    assert job(api, job_id)["status"] == "succeeded"
    still_open = aws.s3.list_multipart_uploads(Bucket=aws.bucket).get("Uploads", [])
    assert [upload["UploadId"] for upload in still_open] == [other["UploadId"]]
    assert left_open["UploadId"] not in {upload["UploadId"] for upload in still_open}


def test_a_live_worker_keeps_its_job(api, aws):
    job_id = api.create_job().json["id"]
    claim(job_id)  # its lease runs until 2099

    report = sweeper().sweep()

    assert (report.requeued, report.failed) == (0, 0)
    assert job(api, job_id)["status"] == "running"


def test_after_the_last_attempt_an_expired_lease_fails_the_job_and_its_reexport_and_says_so(api, aws):
    original = put_succeeded_report(aws)
    requested = api.call("POST", REEXPORTS, body={"report_id": original.id}).json
    for message in aws.receive_all(aws.queue_url):
        aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    for _ in range(3):  # MAX_ATTEMPTS is 3 here: three claims, each lease run out
        claim(requested["job_id"])
        expire_the_lease(aws, "tenant-a", requested["job_id"])

    report = sweeper().sweep()
    [execution] = aws.wait_for_executions()

    assert (report.failed, report.requeued) == (1, 0)
    assert execution["status"] == "SUCCEEDED" and re.search(r"-3-swept-\d{14}$", execution["name"])
    failed = job(api, requested["job_id"])
    assert (failed["status"], failed["error_code"]) == ("failed", "LEASE_EXPIRED")
    record = api.call("GET", f"{REEXPORTS}/{requested['id']}").json
    assert (record["status"], record["error_code"]) == ("failed", "LEASE_EXPIRED")
    assert job(api, original.id)["active_reexport_id"] is None
    [notification] = aws.notifications()
    assert notification["MessageAttributes"]["status"]["Value"] == "failed"
    assert "LEASE_EXPIRED" in notification["Message"]


def test_a_job_failed_for_good_has_the_upload_its_last_worker_left_open_aborted(api, aws):
    job_id = api.create_job().json["id"]
    for message in aws.receive_all(aws.queue_url):
        aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    for attempt in range(1, 4):  # MAX_ATTEMPTS is 3 here; each worker killed with its upload open
        claim(job_id)
        aws.s3.create_multipart_upload(Bucket=aws.bucket, Key=f"tenants/tenant-a/jobs/{job_id}/{attempt}/part.csv")
        expire_the_lease(aws, "tenant-a", job_id)
        if attempt < 3:
            sweeper().sweep()  # requeued: the next claim is the next attempt
            for message in aws.receive_all(aws.queue_url):
                aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])

    report = sweeper().sweep()
    aws.wait_for_executions()

    assert report.failed == 1
    assert job(api, job_id)["error_code"] == "LEASE_EXPIRED"
    assert aws.s3.list_multipart_uploads(Bucket=aws.bucket).get("Uploads", []) == []


@pytest.mark.reliability(
    scenario="A wake-up lost after the job was written",
    injected="a queued job whose message never reached the queue",
    checked="the sweeper sends it once; the job completes",
)
def test_a_lost_wake_up_is_sent_again_once_and_the_job_completes(api, aws):
    job_id = api.create_job().json["id"]
    for message in aws.receive_all(aws.queue_url):
        aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    forget_when_the_job_was_queued(aws, "tenant-a", job_id)

    first, second = sweeper().sweep(), sweeper().sweep()

    assert (first.woken, second.woken) == (1, 0)  # woken now: not due again at once
    run_worker(aws)
    assert job(api, job_id)["status"] == "succeeded"


def test_a_recently_queued_job_is_left_to_its_own_wake_up(api, aws):
    job_id = api.create_job().json["id"]

    assert sweeper().sweep().woken == 0
    assert [message["job_id"] for message in aws.queued_messages()] == [job_id]


@pytest.mark.reliability(
    scenario="A message in the dead-letter queue",
    injected="a wake-up that exhausted its deliveries",
    checked="the job ends failed DEAD_LETTERED, announced; the letter leaves the queue",
)
def test_a_dead_letter_fails_its_job_announced_and_leaves_the_queue(api, aws):
    job_id = api.create_job().json["id"]
    for message in aws.receive_all(aws.queue_url):
        aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    claim(job_id)
    expire_the_lease(aws, "tenant-a", job_id)  # its worker is gone too
    aws.sqs.send_message(
        QueueUrl=aws.dead_letter_queue_url, MessageBody=json.dumps({"tenant_id": "tenant-a", "job_id": job_id})
    )
    aws.sqs.send_message(QueueUrl=aws.dead_letter_queue_url, MessageBody="not a wake-up")

    report = sweeper().sweep()
    aws.wait_for_executions()

    assert (report.dead_letters, report.failed) == (2, 1)
    failed = job(api, job_id)
    assert (failed["status"], failed["error_code"]) == ("failed", "DEAD_LETTERED")
    assert [event["detail"]["error_code"] for event in aws.events()] == ["DEAD_LETTERED"]
    assert aws.receive_all(aws.dead_letter_queue_url, visibility_timeout=0) == []


def test_a_dead_letter_of_a_finished_job_is_only_removed(api, aws):
    job_id = api.create_job().json["id"]
    run_worker(aws)
    aws.sqs.send_message(
        QueueUrl=aws.dead_letter_queue_url, MessageBody=json.dumps({"tenant_id": "tenant-a", "job_id": job_id})
    )

    report = sweeper().sweep()

    assert (report.dead_letters, report.failed) == (1, 0)
    assert job(api, job_id)["status"] == "succeeded"


@pytest.mark.reliability(
    scenario="Two sweepers at once",
    injected="two sweeps over the same due work, concurrently",
    checked="each requeue, re-send and failure happens once",
)
def test_two_sweepers_at_once_do_each_thing_once(api, serialized_aws):
    aws = serialized_aws
    died = a_worker_died_mid_run(api, aws)
    lost = api.create_job().json["id"]
    for message in aws.receive_all(aws.queue_url):
        aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    forget_when_the_job_was_queued(aws, "tenant-a", lost)
    reports = []

    threads = [threading.Thread(target=lambda: reports.append(sweeper().sweep())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(report.requeued for report in reports) == 1
    assert sum(report.woken for report in reports) == 1
    assert sorted(message["job_id"] for message in aws.queued_messages()) == sorted([died, lost])


def test_a_dead_letter_of_a_job_a_live_worker_still_runs_leaves_the_job_alone(api, aws):
    # Wake-ups are sent more than once (the sweeper re-sends lost ones): a dead letter may be another
    # delivery's than the one whose worker holds the job.
    job_id = api.create_job().json["id"]
    claim(job_id)  # its lease runs until 2099
    aws.sqs.send_message(
        QueueUrl=aws.dead_letter_queue_url, MessageBody=json.dumps({"tenant_id": "tenant-a", "job_id": job_id})
    )

    report = sweeper().sweep()

    assert (report.dead_letters, report.failed) == (1, 0)
    assert job(api, job_id)["status"] == "running"
    assert aws.receive_all(aws.dead_letter_queue_url, visibility_timeout=0) == []


def test_a_job_released_by_a_failed_attempt_waits_for_its_own_message_to_come_back(api, aws):
    job_id = api.create_job().json["id"]
    for message in aws.receive_all(aws.queue_url):
        aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    claimed = claim(job_id)
    job_repository().update_attempt(claimed, {"status": "queued", "updated_at": "2026-01-01T00:00:00.000Z"})
    ten_minutes_ago = format_timestamp(now_utc() - timedelta(minutes=10))
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{job_id}"}},
        UpdateExpression="SET updated_at = :at, GSI3SK = :due",
        ExpressionAttributeValues={
            ":at": {"S": ten_minutes_ago},
            ":due": {"S": f"{ten_minutes_ago}#tenant-a#{job_id}"},
        },
    )

    assert sweeper().sweep().woken == 0  # the queue's backoff and its delivery count still hold
    forget_when_the_job_was_queued(aws, "tenant-a", job_id)  # long past the visibility timeout: lost after all
    assert sweeper().sweep().woken == 1


def test_one_job_that_cannot_be_swept_does_not_stop_the_sweep(api, aws, monkeypatch):
    broken, lost = a_worker_died_mid_run(api, aws), api.create_job().json["id"]
    for message in aws.receive_all(aws.queue_url):
        aws.sqs.delete_message(QueueUrl=aws.queue_url, ReceiptHandle=message["ReceiptHandle"])
    forget_when_the_job_was_queued(aws, "tenant-a", lost)
    client = clients.dynamodb()
    real_update = client.update_item

    def the_first_job_is_unwritable(**kwargs):
        if kwargs["Key"]["SK"]["S"] == f"JOB#{broken}":
            raise RuntimeError("simulated: the table refuses this one item")
        return real_update(**kwargs)

    monkeypatch.setattr(client, "update_item", the_first_job_is_unwritable)

    report = sweeper().sweep()

    assert report.skipped == [broken]
    assert report.woken == 1 and job(api, broken)["status"] == "running"
