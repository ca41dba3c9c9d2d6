"""The worker loop as Lambda's SQS event source runs it: a message the generator cannot process fails
its item, comes back after the visibility timeout and ends in the dead-letter queue after
maxReceiveCount deliveries (2 in this stack), while the rest of the service carries on.

This test writes to the queue itself, through the stack's AWS endpoint over HTTP (nothing a client
of the API can do, since the API only sends valid wake-ups)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .running_stack import RunningStack

POISON = "this is not a wake-up message"


@pytest.fixture
def sqs(stack: RunningStack) -> Any:
    return stack.aws_client("sqs")


@pytest.fixture
def generate_queue(sqs: Any) -> Iterator[tuple[str, str]]:
    """The queue with a redrive policy (the generator's) and its dead-letter queue, with a one-second
    visibility timeout for the test (the template's is 90 minutes)."""
    for url in sqs.list_queues()["QueueUrls"]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if "RedrivePolicy" in attributes:
            break
    else:
        raise AssertionError("no queue with a redrive policy")
    dead_letter_name = json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"].rsplit(":", 1)[1]
    dead_letter_url = sqs.get_queue_url(QueueName=dead_letter_name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "1"})
    yield url, dead_letter_url
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": attributes["VisibilityTimeout"]})


def test_a_poison_message_is_retried_then_dead_lettered(stack, sqs, generate_queue):
    queue_url, dead_letter_url = generate_queue

    sqs.send_message(QueueUrl=queue_url, MessageBody=POISON)

    deadline = time.monotonic() + 30
    dead = []
    while not dead and time.monotonic() < deadline:
        dead = sqs.receive_message(QueueUrl=dead_letter_url, AttributeNames=["All"]).get("Messages", [])
        time.sleep(0.2)
    assert [message["Body"] for message in dead] == [POISON], stack.log_tail()
    assert int(dead[0]["Attributes"]["ApproximateReceiveCount"]) >= 2  # delivered twice on the queue, once here
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
    # Powertools raises when every record of a batch failed, so the whole invocation fails and the batch stays.
    assert "[worker] GeneratorFunction failed (BatchProcessingError" in stack.log_file.read_text()
