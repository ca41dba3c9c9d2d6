"""The operator-wide e-mail subscription sees every tenant's notices, so it gets only those without a
signed link: a link downloads the file without login, and must reach only the tenant's own people."""

from __future__ import annotations

import json

import boto3

from support.reexports import run_worker
from support.template import resource_properties


def operator_queue(aws) -> str:
    """A queue subscribed to the report topic as the template subscribes the operator's address."""
    properties = resource_properties("ReportTopicEmailSubscription")
    sns = boto3.client("sns")
    topic_arn = sns.create_topic(Name="report-export")["TopicArn"]
    url = aws.sqs.create_queue(QueueName="operator-address")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={
            "FilterPolicy": json.dumps(properties["FilterPolicy"]),
            "FilterPolicyScope": properties["FilterPolicyScope"],
        },
    )
    return url


def test_the_operator_address_gets_failures_but_never_a_notice_with_a_link(api, aws, upstream):
    queue = operator_queue(aws)
    api.create_job()
    run_worker(aws)
    upstream.knobs.always_fail_with = 400
    api.create_job()
    run_worker(aws)

    tenant_notices = aws.notifications()
    operator_notices = [json.loads(message["Body"]) for message in aws.receive_all(queue)]

    assert sorted(notice["Subject"].split(":")[0] for notice in tenant_notices) == ["Report failed", "Report ready"]
    assert [notice["Subject"].split(":")[0] for notice in operator_notices] == ["Report failed"]
    assert all("token=" not in notice["Message"] for notice in operator_notices)
    ready = next(notice for notice in tenant_notices if notice["Subject"].startswith("Report ready"))
    assert ready["MessageAttributes"]["carries_link"]["Value"] == "true" and "token=" in ready["Message"]
