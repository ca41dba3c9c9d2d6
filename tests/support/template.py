"""Create the template's resources in moto from template.yaml itself, so tests cannot drift from
the deployed shape. Intrinsic functions are read with cfn-lint's CloudFormation YAML decoder."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"


@cache
def load_template() -> dict[str, Any]:
    template, problems = decode(str(TEMPLATE_PATH))
    if problems:
        raise RuntimeError(f"template.yaml does not parse: {problems}")
    return template


def resource_properties(logical_id: str) -> dict[str, Any]:
    return load_template()["Resources"][logical_id]["Properties"]


def create_table(dynamodb: Any, logical_id: str, table_name: str) -> None:
    props = resource_properties(logical_id)
    request: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props["BillingMode"],
    }
    if "GlobalSecondaryIndexes" in props:
        request["GlobalSecondaryIndexes"] = [
            {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"], "Projection": index["Projection"]}
            for index in props["GlobalSecondaryIndexes"]
        ]
    if props.get("SSESpecification", {}).get("SSEEnabled"):
        request["SSESpecification"] = {"Enabled": True}
    dynamodb.create_table(**request)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        dynamodb.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
    if props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=table_name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


def create_queue_with_dead_letter_queue(
    sqs: Any, logical_id: str, queue_name: str, max_receive_count: int
) -> tuple[str, str]:
    """The queue and the dead-letter queue its RedrivePolicy names. Returns both URLs."""
    import json

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
