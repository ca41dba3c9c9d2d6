"""A job whose announcement never went out (SNS down for longer than the state machine retries) is
announced again by the sweeper: once it is due, exactly once per round, and a few rounds at most."""

from __future__ import annotations

import json
import threading

import boto3
import pytest

from report_export.core.settings import get_settings
from report_export.sweeping.sweeper import sweeper

from support.reexports import JOBS, run_worker
from support.sweeping import make_the_announcement_due

TOPIC_NAME = "report-export"


def topic_arn() -> str:
    return boto3.client("sns").create_topic(Name=TOPIC_NAME)["TopicArn"]


def take_sns_down() -> None:
    boto3.client("sns").delete_topic(TopicArn=topic_arn())


def bring_sns_back(aws) -> None:
    arn = topic_arn()
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=aws.notifications_queue_url, AttributeNames=["QueueArn"])
    boto3.client("sns").subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])


def job_item(aws, job_id: str) -> dict:
    key = {"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{job_id}"}}
    return aws.dynamodb.get_item(TableName=aws.table_name, Key=key, ConsistentRead=True)["Item"]


def unannounced_job(api, aws, *, fail: bool = False, upstream=None) -> str:
    job_id = api.create_job().json["id"]
    if fail:
        upstream.knobs.always_fail_with = 400
    take_sns_down()
    [execution] = run_worker(aws)
    assert (execution["status"], execution.get("error")) == ("FAILED", "AnnouncementFailed")
    bring_sns_back(aws)
    aws.notifications()  # nothing reached subscribers; clear the queue all the same
    return job_id


@pytest.mark.reliability(
    scenario="SNS down for longer than the state machine retries",
    injected="the topic gone for the whole execution, back before the sweep",
    checked="the job stays succeeded; the sweeper announces it once when due, with a working link",
)
def test_a_job_whose_announcement_never_went_out_is_announced_again_once(api, aws):
    job_id = unannounced_job(api, aws)
    item = job_item(aws, job_id)
    assert (item["status"]["S"], item["GSI3PK"]["S"]) == ("succeeded", "UNANNOUNCED")
    assert "notification_sent_at" not in item

    not_yet = sweeper().sweep()
    make_the_announcement_due(aws, "tenant-a", job_id)
    report = sweeper().sweep()
    executions = aws.wait_for_executions()

    assert (not_yet.announced, report.announced) == (0, 1)
    announced = [execution for execution in executions if execution["name"].endswith("-announce-1")]
    assert [execution["status"] for execution in announced] == ["SUCCEEDED"]
    [notice] = aws.notifications()
    assert notice["Subject"].startswith("Report ready")
    link = next(line for line in notice["Message"].splitlines() if line.startswith("Download: "))
    token = link.split("token=", 1)[1]
    download = api.call("GET", f"{JOBS}/{job_id}/file", authenticated=False, query={"token": token})
    assert download.status in (200, 302), download.body
    item = job_item(aws, job_id)
    assert "notification_sent_at" in item and "GSI3PK" not in item
    # Even made due again by hand, an announced job is not announced twice.
    make_the_announcement_due(aws, "tenant-a", job_id)
    assert sweeper().sweep().announced == 0
    assert aws.notifications() == []


def test_a_failed_job_is_announced_again_as_a_failure(api, aws, upstream):
    job_id = unannounced_job(api, aws, fail=True, upstream=upstream)
    make_the_announcement_due(aws, "tenant-a", job_id)

    assert sweeper().sweep().announced == 1
    aws.wait_for_executions()

    [notice] = aws.notifications()
    assert notice["Subject"].startswith("Report failed")
    assert "UPSTREAM_REJECTED" in notice["Message"]


def test_a_job_announced_the_first_time_is_not_left_to_announce(api, aws):
    job_id = api.create_job().json["id"]
    run_worker(aws)

    item = job_item(aws, job_id)
    assert "notification_sent_at" in item and "GSI3PK" not in item


def test_two_sweepers_at_once_announce_a_job_once(api, aws):
    job_id = unannounced_job(api, aws)
    make_the_announcement_due(aws, "tenant-a", job_id)
    reports = []
    sweep = sweeper()
    threads = [threading.Thread(target=lambda: reports.append(sweep.sweep())) for _ in range(2)]

    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    aws.wait_for_executions()

    assert sum(report.announced for report in reports) == 1
    assert len(aws.notifications()) == 1


def test_the_sweeper_gives_up_after_its_announce_attempts(api, aws, monkeypatch):
    monkeypatch.setenv("ANNOUNCE_ATTEMPTS", "2")
    get_settings.cache_clear()
    sweeper.cache_clear()
    job_id = unannounced_job(api, aws)
    take_sns_down()

    rounds = []
    for _ in range(4):
        make_the_announcement_due(aws, "tenant-a", job_id)
        rounds.append(sweeper().sweep().announced)
        aws.wait_for_executions()

    assert rounds == [1, 1, 0, 0]
    item = job_item(aws, job_id)
    assert "GSI3PK" not in item and item["status"]["S"] == "succeeded"
    assert json.loads(json.dumps(item["announce_attempts"])) == {"N": "3"}
