"""One wake-up delivered five times at once (SQS delivers at least once; a visibility timeout that ran
out mid-run hands the message to another worker): one file, one succeeded transition, one notification."""

from __future__ import annotations

import threading

import pytest

from local.worker import lambda_sqs_event

from conftest import LambdaContextStub
from support.state_machine import wait_for_execution

JOBS = "/api/v1/reports/jobs"
DELIVERIES = 5


@pytest.mark.reliability(
    scenario="One message delivered five times at once",
    injected="the same wake-up handed to five generator invocations concurrently",
    checked="one file, no open upload, one succeeded transition (one execution), one e-mail, one event",
)
def test_five_concurrent_deliveries_of_one_wake_up_make_one_file_and_one_notification(api, serialized_aws):
    from generator.handler import lambda_handler

    aws = serialized_aws
    job_id = api.create_job().json["id"]
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["QueueArn"])["Attributes"]
    # The create's wake-up, and the same body four times more: a standard queue's duplicates, and
    # redeliveries once a visibility timeout ran out, arrive as copies of the one message.
    [wake_up] = aws.sqs.receive_message(QueueUrl=aws.queue_url, AttributeNames=["All"])["Messages"]
    for _ in range(DELIVERIES - 1):
        aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=wake_up["Body"])
    receipts = [wake_up]
    while len(receipts) < DELIVERIES:
        receipts += aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])[
            "Messages"
        ]
    assert {receipt["Body"] for receipt in receipts} == {wake_up["Body"]}
    start = threading.Barrier(DELIVERIES)
    answers: list[dict] = []

    def deliver(receipt: dict) -> None:
        event = lambda_sqs_event([receipt], queue_arn["QueueArn"], "eu-west-1")
        start.wait(timeout=30)
        answers.append(lambda_handler(event, LambdaContextStub()))

    workers = [threading.Thread(target=deliver, args=(receipt,)) for receipt in receipts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)

    executions = [
        wait_for_execution(aws.sfn, execution["executionArn"])
        for execution in aws.sfn.list_executions(stateMachineArn=aws.state_machine_arn)["executions"]
    ]
    assert answers == [{"batchItemFailures": []}] * DELIVERIES
    assert [execution["status"] for execution in executions] == ["SUCCEEDED"]
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert job["status"] == "succeeded"
    objects = aws.s3.list_objects_v2(Bucket=aws.bucket).get("Contents", [])
    assert [item["Key"] for item in objects] == [job["file_path"]]
    assert aws.s3.list_multipart_uploads(Bucket=aws.bucket).get("Uploads", []) == []
    assert len(aws.notifications()) == 1
    assert len(aws.events()) == 1
