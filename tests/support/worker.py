"""Deliver real SQS messages to the generator handler the way Lambda's event source mapping does:
a batch of received messages becomes an SQS event; what the handler reports as failed stays on
the queue (visible again after its visibility timeout), everything else is deleted."""

from __future__ import annotations

from typing import Any

from local.worker import lambda_sqs_event, settle


def deliver_once(
    sqs: Any,
    queue_url: str,
    handler: Any,
    context: Any,
    *,
    batch_size: int = 10,
    visibility_timeout: int = 0,
    region: str = "eu-west-1",
) -> dict[str, Any] | None:
    """One poll: receive up to batch_size messages, invoke the handler, settle the batch.

    Returns the handler's response, or None when the queue had nothing to deliver.
    """
    received = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=batch_size,
        VisibilityTimeout=visibility_timeout,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    if not received:
        return None
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    try:
        response = handler(lambda_sqs_event(received, queue_arn, region), context)
    except Exception:
        # An invocation that raises (Powertools does when every record failed) returns the whole batch.
        response = {"batchItemFailures": [{"itemIdentifier": message["MessageId"]} for message in received]}
    settle(sqs, queue_url, received, response, report_item_failures=True)
    return response
