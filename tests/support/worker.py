"""Deliver real SQS messages to the generator handler the way Lambda's event source mapping does:
a batch of received messages becomes an SQS event; what the handler reports as failed stays on
the queue (visible again after its visibility timeout), everything else is deleted."""

from __future__ import annotations

from typing import Any


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str = "eu-west-1") -> dict[str, Any]:
    records = []
    for message in messages:
        attributes = message.get("MessageAttributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": None,
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in attributes.items()
                },
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def deliver_once(
    sqs: Any, queue_url: str, handler: Any, context: Any, *, batch_size: int = 10, visibility_timeout: int = 0
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
        response = handler(lambda_sqs_event(received, queue_arn), context)
    except Exception:
        # An invocation that raises (Powertools does when every record failed) returns the whole batch.
        response = {"batchItemFailures": [{"itemIdentifier": message["MessageId"]} for message in received]}
    failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
    for message in received:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return response
