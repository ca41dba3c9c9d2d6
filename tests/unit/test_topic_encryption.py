"""Topics an AWS service publishes to (CloudWatch alarms, EventBridge rules) must not be encrypted with the
AWS-managed key alias/aws/sns: its key policy cannot grant the service, so the publish would fail and the
alarm would reach nobody. Their key must grant the publishing service, scoped to this account."""

from __future__ import annotations

from typing import Any

from support.template import load_template

AWS_MANAGED_SNS_KEY = "alias/aws/sns"
# Where a template names the topics an AWS service publishes to, and which service that is.
PUBLISHERS = {
    "AWS::CloudWatch::Alarm": (("AlarmActions", "OKActions", "InsufficientDataActions"), "cloudwatch.amazonaws.com"),
}


def referenced(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else str(target).split(".")[0]
    return None


def topics_published_to_by_services(resources: dict[str, Any]) -> dict[str, set[str]]:
    """Topic logical id → the service principals that publish to it."""
    found: dict[str, set[str]] = {}
    for resource in resources.values():
        kind = resource.get("Type")
        properties = resource.get("Properties", {})
        if kind in PUBLISHERS:
            names, service = PUBLISHERS[kind]
            for name in names:
                for action in properties.get(name, []):
                    if (topic := referenced(action)) and resources.get(topic, {}).get("Type") == "AWS::SNS::Topic":
                        found.setdefault(topic, set()).add(service)
        if kind == "AWS::Events::Rule":
            for target in properties.get("Targets", []):
                topic = referenced(target.get("Arn"))
                if topic and resources.get(topic, {}).get("Type") == "AWS::SNS::Topic":
                    found.setdefault(topic, set()).add("events.amazonaws.com")
    return found


def test_the_alarm_topic_is_one_an_aws_service_publishes_to():
    resources = load_template()["Resources"]

    assert topics_published_to_by_services(resources) == {"AlarmTopic": {"cloudwatch.amazonaws.com"}}


def test_no_topic_an_aws_service_publishes_to_uses_the_aws_managed_key():
    resources = load_template()["Resources"]

    for topic, services in topics_published_to_by_services(resources).items():
        key = resources[topic]["Properties"].get("KmsMasterKeyId")
        assert key != AWS_MANAGED_SNS_KEY, topic
        key_id = referenced(key)
        assert key_id and resources[key_id]["Type"] == "AWS::KMS::Key", (topic, key)
        statements = resources[key_id]["Properties"]["KeyPolicy"]["Statement"]
        for service in services:
            [grant] = [s for s in statements if s.get("Principal", {}).get("Service") == service]
            assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(grant["Action"]), topic
            # Scoped: only this account's alarms (not any account's CloudWatch) may use the key.
            assert "aws:SourceAccount" in grant["Condition"]["StringEquals"]
            assert "aws:SourceArn" in grant["Condition"]["ArnLike"]
