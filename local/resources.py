"""Create the template's resources in moto, from the template itself, so local and cloud cannot drift.

Physical names are decided first for every resource (CloudFormation style: stack name and logical
id, unless the template names it), so any !Ref or !GetAtt resolves whatever the creation order.
Resource types moto cannot run here (functions, the HTTP API, layers) get names and ARNs too:
the local runtime and gateway stand in for them.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.state_machine import create_state_machine, render_definition
from local.template import ACCOUNT_ID, Template, TemplateError

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/local-stack"

# Properties that are not SQS queue attributes, or that are set in a second step.
_QUEUE_PROPERTIES_NOT_ATTRIBUTES = {"QueueName", "Tags", "RedrivePolicy", "RedriveAllowPolicy"}


@dataclass
class Deployment:
    """What the local stack created: physical ids by logical id, and what it could not create."""

    created: dict[str, str] = field(default_factory=dict)  # logical id -> type
    skipped: dict[str, str] = field(default_factory=dict)  # logical id -> why
    secure_parameters: dict[str, str] = field(default_factory=dict)  # SSM name -> value


def assign_physical_ids(template: Template, *, aws_endpoint: str, api_url: str) -> None:
    """Fill template.physical with the name, ARN or URL each resource answers to."""
    region, stack, account = template.region, template.stack_name, ACCOUNT_ID
    physical = template.physical
    # Names that are themselves intrinsics (a log group named after a function) are resolved
    # after the resources they name, so run over the resources until nothing changes.
    for _ in range(3):
        for logical_id, resource in template.resources.items():
            props = resource.get("Properties", {})
            kind = resource.get("Type", "")

            def name(prop: str, *, lower: bool = False, logical_id: str = logical_id, props: dict = props) -> str:
                value = props.get(prop)
                if value is not None:
                    try:
                        return str(template.resolve(value))
                    except TemplateError:
                        pass  # refers to something not named yet; the next pass names it
                default = f"{stack}-{logical_id}"
                return default.lower() if lower else default

            refs, attrs = physical.refs, physical.attributes
            if kind == "AWS::DynamoDB::Table":
                table = name("TableName")
                refs[logical_id] = table
                attrs[(logical_id, "Arn")] = f"arn:aws:dynamodb:{region}:{account}:table/{table}"
                attrs[(logical_id, "StreamArn")] = f"arn:aws:dynamodb:{region}:{account}:table/{table}/stream/local"
            elif kind == "AWS::SQS::Queue":
                queue = name("QueueName")
                if props.get("FifoQueue") and not queue.endswith(".fifo"):
                    queue += ".fifo"
                refs[logical_id] = attrs[(logical_id, "QueueUrl")] = f"{aws_endpoint}/{account}/{queue}"
                attrs[(logical_id, "Arn")] = f"arn:aws:sqs:{region}:{account}:{queue}"
                attrs[(logical_id, "QueueName")] = queue
            elif kind == "AWS::S3::Bucket":
                bucket = name("BucketName", lower=True)
                refs[logical_id] = bucket
                attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{bucket}"
                attrs[(logical_id, "DomainName")] = f"{bucket}.s3.amazonaws.com"
                attrs[(logical_id, "RegionalDomainName")] = f"{bucket}.s3.{region}.amazonaws.com"
            elif kind == "AWS::SNS::Topic":
                topic = name("TopicName")
                refs[logical_id] = attrs[(logical_id, "TopicArn")] = f"arn:aws:sns:{region}:{account}:{topic}"
                attrs[(logical_id, "TopicName")] = topic
            elif kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
                machine = name("Name" if kind == "AWS::Serverless::StateMachine" else "StateMachineName")
                arn = f"arn:aws:states:{region}:{account}:stateMachine:{machine}"
                refs[logical_id] = attrs[(logical_id, "Arn")] = arn
                attrs[(logical_id, "Name")] = machine
            elif kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
                function = name("FunctionName")
                refs[logical_id] = function
                attrs[(logical_id, "Arn")] = f"arn:aws:lambda:{region}:{account}:function:{function}"
            elif kind == "AWS::Serverless::HttpApi":
                api_id = logical_id.lower()
                refs[logical_id] = api_id
                attrs[(logical_id, "ApiEndpoint")] = api_url
            elif kind == "AWS::Serverless::LayerVersion":
                refs[logical_id] = f"arn:aws:lambda:{region}:{account}:layer:{stack}-{logical_id}:1"
            elif kind == "AWS::Logs::LogGroup":
                group = name("LogGroupName")
                refs[logical_id] = group
                attrs[(logical_id, "Arn")] = f"arn:aws:logs:{region}:{account}:log-group:{group}:*"
            elif kind == "AWS::Scheduler::ScheduleGroup":
                group = name("Name")
                refs[logical_id] = group
                attrs[(logical_id, "Arn")] = f"arn:aws:scheduler:{region}:{account}:schedule-group/{group}"
            elif kind == "AWS::IAM::Role":
                role = name("RoleName")
                refs[logical_id] = role
                attrs[(logical_id, "Arn")] = f"arn:aws:iam::{account}:role/{role}"
            elif kind == "AWS::CloudWatch::Alarm":
                alarm = name("AlarmName")
                refs[logical_id] = alarm
                attrs[(logical_id, "Arn")] = f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm}"
            else:
                refs[logical_id] = f"{stack}-{logical_id}"


def deploy(template: Template, clients: Callable[[str], Any], *, visibility_timeout: int | None = None) -> Deployment:
    """Create every resource moto supports, in an order that satisfies moto's own existence checks."""
    deployment = Deployment()
    steps: list[tuple[str, Callable[[Template, Callable[[str], Any], str, dict[str, Any]], None]]] = [
        ("AWS::DynamoDB::Table", _create_table),
        ("AWS::SQS::Queue", lambda t, c, lid, p: _create_queue(t, c, lid, p, visibility_timeout)),
        ("AWS::S3::Bucket", _create_bucket),
        ("AWS::SNS::Topic", _create_topic),
        ("AWS::Logs::LogGroup", _create_log_group),
        ("AWS::SQS::Queue", _set_redrive_policy),
        ("AWS::S3::BucketPolicy", _put_bucket_policy),
        ("AWS::SNS::Subscription", _subscribe),
        ("AWS::Serverless::StateMachine", _create_state_machine),
        ("AWS::CloudWatch::Alarm", _put_alarm),
        ("AWS::Scheduler::ScheduleGroup", _create_schedule_group),
    ]
    for kind, create in steps:
        for logical_id, resource in template.resources_of_type(kind).items():
            create(template, clients, logical_id, template.resolve(resource.get("Properties", {})))
            deployment.created.setdefault(logical_id, kind)
    for logical_id, resource in template.resources.items():
        if logical_id in deployment.created:
            continue
        if not template.condition_holds(resource.get("Condition")):
            deployment.skipped[logical_id] = f"condition {resource['Condition']} is false"
        else:
            deployment.skipped[logical_id] = _STAND_INS.get(resource.get("Type", ""), "not supported locally")
    deployment.secure_parameters = _create_secure_parameters(template, clients("ssm"))
    return deployment


_STAND_INS = {
    "AWS::Serverless::Function": "runs in the local runtime",
    "AWS::Serverless::HttpApi": "served by the local gateway",
    "AWS::Serverless::LayerVersion": "on the functions' import path",
    "AWS::IAM::Role": "named only: the local stack checks no permissions",
}


def create_table(dynamodb: Any, props: dict[str, Any], table_name: str) -> None:
    """A DynamoDB table with the keys, indexes, TTL and backups its template properties declare."""
    request: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = props.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        )
    for section in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if section in props:
            request[section] = [
                {"IndexName": index["IndexName"], "KeySchema": index["KeySchema"], "Projection": index["Projection"]}
                for index in props[section]
            ]
    if props.get("SSESpecification", {}).get("SSEEnabled"):
        request["SSESpecification"] = {"Enabled": True}
    if "StreamSpecification" in props:
        request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
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


def queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    """SQS attributes from queue properties (RedrivePolicy excluded: its target may not exist yet)."""
    attributes = {}
    for name, value in props.items():
        if name in _QUEUE_PROPERTIES_NOT_ATTRIBUTES:
            continue
        attributes[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return attributes


def redrive_policy(props: dict[str, Any]) -> str:
    policy = props["RedrivePolicy"]
    return json.dumps(
        {"deadLetterTargetArn": policy["deadLetterTargetArn"], "maxReceiveCount": str(policy["maxReceiveCount"])}
    )


def _create_table(template: Template, clients: Callable[[str], Any], logical_id: str, props: dict[str, Any]) -> None:
    create_table(clients("dynamodb"), props, template.physical.refs[logical_id])


def _create_queue(
    template: Template, clients: Callable[[str], Any], logical_id: str, props: dict[str, Any], visibility: int | None
) -> None:
    attributes = queue_attributes(props)
    if visibility is not None:
        attributes["VisibilityTimeout"] = str(visibility)
    name = template.physical.attributes[(logical_id, "QueueName")]
    clients("sqs").create_queue(QueueName=name, Attributes=attributes)


def _set_redrive_policy(
    template: Template, clients: Callable[[str], Any], logical_id: str, props: dict[str, Any]
) -> None:
    if "RedrivePolicy" in props:
        clients("sqs").set_queue_attributes(
            QueueUrl=template.physical.refs[logical_id], Attributes={"RedrivePolicy": redrive_policy(props)}
        )


def _create_bucket(template: Template, clients: Callable[[str], Any], logical_id: str, props: dict[str, Any]) -> None:
    create_bucket(clients("s3"), props, template.physical.refs[logical_id], region=template.region)


def create_bucket(s3: Any, props: dict[str, Any], bucket: str, *, region: str) -> None:
    """The bucket as the template declares it: Object Lock, encryption, public access, versioning, lifecycle."""
    options: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        options["CreateBucketConfiguration"] = {"LocationConstraint": region}
    if props.get("ObjectLockEnabled"):
        options["ObjectLockEnabledForBucket"] = True
    s3.create_bucket(**options)
    if "BucketEncryption" in props:
        rules = [
            {("ApplyServerSideEncryptionByDefault" if name == "ServerSideEncryptionByDefault" else name): value}
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            for name, value in rule.items()
        ]
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "OwnershipControls" in props:
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=props["OwnershipControls"])
    if props.get("VersioningConfiguration", {}).get("Status"):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=props["VersioningConfiguration"])
    lifecycle_rules = props.get("LifecycleConfiguration", {}).get("Rules")
    if lifecycle_rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in lifecycle_rules]}
        )


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the shape of the S3 API (the common fields)."""
    converted: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        converted["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if rule.get("ExpiredObjectDeleteMarker"):
        converted["Expiration"] = {"ExpiredObjectDeleteMarker": True}
    if "NoncurrentVersionExpiration" in rule:
        days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return converted


def _put_bucket_policy(
    template: Template, clients: Callable[[str], Any], logical_id: str, props: dict[str, Any]
) -> None:
    # moto enforces bucket policies, and the local endpoint speaks plain http on 127.0.0.1: a TLS-only
    # statement would refuse every request, so it is the one part of a policy left out here.
    document = dict(props["PolicyDocument"])
    document["Statement"] = [
        statement
        for statement in document.get("Statement", [])
        if "aws:SecureTransport" not in json.dumps(statement.get("Condition", {}))
    ]
    if document["Statement"]:
        clients("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))


def _create_topic(template: Template, clients: Callable[[str], Any], logical_id: str, props: dict[str, Any]) -> None:
    attributes = {name: str(props[name]) for name in ("DisplayName", "KmsMasterKeyId") if name in props}
    clients("sns").create_topic(Name=template.physical.attributes[(logical_id, "TopicName")], Attributes=attributes)


def _subscribe(template: Template, clients: Callable[[str], Any], logical_id: str, props: dict[str, Any]) -> None:
    attributes = {"FilterPolicy": json.dumps(props["FilterPolicy"])} if "FilterPolicy" in props else {}
    if "FilterPolicyScope" in props:
        attributes["FilterPolicyScope"] = str(props["FilterPolicyScope"])
    clients("sns").subscribe(
        TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"], Attributes=attributes
    )


def _create_log_group(
    template: Template, clients: Callable[[str], Any], logical_id: str, props: dict[str, Any]
) -> None:
    logs, group = clients("logs"), template.physical.refs[logical_id]
    logs.create_log_group(logGroupName=group)
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=group, retentionInDays=int(props["RetentionInDays"]))


def _create_state_machine(
    template: Template, clients: Callable[[str], Any], logical_id: str, props: dict[str, Any]
) -> None:
    if "DefinitionUri" in props:
        text = (template.directory / str(props["DefinitionUri"])).read_text(encoding="utf-8")
    else:
        text = json.dumps(props["Definition"])
    substitutions = {name: str(value) for name, value in props.get("DefinitionSubstitutions", {}).items()}
    create_state_machine(
        clients("stepfunctions"),
        name=template.physical.attributes[(logical_id, "Name")],
        definition=render_definition(text, substitutions),
        machine_type=str(props.get("Type", "STANDARD")),
    )


_ALARM_NUMBERS = {"Period": int, "EvaluationPeriods": int, "DatapointsToAlarm": int, "Threshold": float}


def _put_alarm(template: Template, clients: Callable[[str], Any], logical_id: str, props: dict[str, Any]) -> None:
    request = {name: _ALARM_NUMBERS.get(name, lambda value: value)(value) for name, value in props.items()}
    request["AlarmName"] = template.physical.refs[logical_id]
    clients("cloudwatch").put_metric_alarm(**request)


def _create_schedule_group(
    template: Template, clients: Callable[[str], Any], logical_id: str, props: dict[str, Any]
) -> None:
    clients("scheduler").create_schedule_group(Name=template.physical.refs[logical_id])


def _create_secure_parameters(template: Template, ssm: Any) -> dict[str, str]:
    """SSM SecureStrings that the template expects to exist before a deploy.

    The template names them by parameters called *ParameterName (the signing secret, the service
    token): each gets a random value here, as an operator would create one before deploying.
    """
    created = {}
    for name, value in template.parameters.items():
        if not name.endswith("ParameterName") or not value:
            continue
        parameter = value if value.startswith("/") else f"/{value}"
        secret = secrets.token_urlsafe(32)
        ssm.put_parameter(Name=parameter, Type="SecureString", Value=secret)
        created[parameter] = secret
    return created
