"""Create the template's resources in moto from template.yaml itself, so tests cannot drift from
the deployed shape. Reading the template and building the requests is the local stack's code
(local.template, local.resources); the tests call it with the names they choose."""

from __future__ import annotations

import json
from typing import Any

from local import resources
from local.parameters import read_template
from local.template import TEMPLATE_PATH, load_template, resource_properties

__all__ = [
    "TEMPLATE_PATH",
    "create_bucket",
    "create_queue_with_dead_letter_queue",
    "create_table",
    "load_template",
    "resource_properties",
]


def create_table(dynamodb: Any, logical_id: str, table_name: str) -> None:
    resources.create_table(dynamodb, resource_properties(logical_id), table_name)


def create_bucket(s3: Any, logical_id: str, bucket: str) -> None:
    template = read_template(TEMPLATE_PATH)
    properties = template.resolve(template.resources[logical_id]["Properties"])
    resources.create_bucket(s3, properties, bucket, region=template.region)


def create_queue_with_dead_letter_queue(
    sqs: Any, logical_id: str, queue_name: str, max_receive_count: int
) -> tuple[str, str]:
    """The queue and the dead-letter queue its RedrivePolicy names. Returns both URLs."""
    props = resource_properties(logical_id)
    dlq_logical_id = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    dlq_props = resource_properties(dlq_logical_id)
    dlq_url = sqs.create_queue(
        QueueName=f"{queue_name}-dlq",
        Attributes={"MessageRetentionPeriod": str(dlq_props["MessageRetentionPeriod"])},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=queue_name,
        Attributes={
            "VisibilityTimeout": str(props["VisibilityTimeout"]),
            "MessageRetentionPeriod": str(props["MessageRetentionPeriod"]),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}),
        },
    )["QueueUrl"]
    return queue_url, dlq_url
