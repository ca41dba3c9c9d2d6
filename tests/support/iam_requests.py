"""What IAM checks for one AWS API call: the actions and the resources it is authorised against.

A call's operation name is not always its IAM action: a DynamoDB transaction is authorised item by
item (IAM has no action for TransactWriteItems), HeadObject needs s3:GetObject, a multipart upload's
parts need s3:PutObject, a batch of SQS deletes needs sqs:DeleteMessage, and a schedule created
with a role needs iam:PassRole on that role. This module spells those rules out, from the AWS
Service Authorization Reference, for the operations the service and the state machine call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

PARTITION = "aws"
REGION = "eu-west-1"
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class Authorisation:
    action: str
    resource: str
    # Condition keys IAM evaluates for this request, e.g. {"iam:PassedToService": "scheduler.amazonaws.com"}.
    context: tuple[tuple[str, str], ...] = field(default=())


class UnknownOperation(ValueError):
    """A call this module has no rule for: add one rather than let the call go unchecked."""


def authorisations(service: str, operation: str, params: dict[str, Any]) -> list[Authorisation]:
    rule = _RULES.get(service)
    if rule is None:
        raise UnknownOperation(f"no IAM rule for {service}:{operation}")
    return rule(operation, params)


def _arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{resource}"


# --- DynamoDB -------------------------------------------------------------------------------------

_TRANSACTION_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def _table_arn(name: str) -> str:
    return name if name.startswith("arn:") else _arn("dynamodb", f"table/{name}")


def _dynamodb(operation: str, params: dict[str, Any]) -> list[Authorisation]:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        found = []
        for item in params["TransactItems"]:
            (kind, body), *_ = item.items()
            found.append(Authorisation(_TRANSACTION_ITEM_ACTIONS[kind], _table_arn(body["TableName"])))
        return found
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Authorisation(f"dynamodb:{operation}", _table_arn(table)) for table in params["RequestItems"]]
    resource = _table_arn(params["TableName"])
    if params.get("IndexName"):
        resource = f"{resource}/index/{params['IndexName']}"
    return [Authorisation(f"dynamodb:{operation}", resource)]


# --- S3 ---------------------------------------------------------------------------------------------

_S3_OBJECT_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "UploadPartCopy": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectLegalHold": "s3:PutObjectLegalHold",
    "GetObjectLegalHold": "s3:GetObjectLegalHold",
    "GetObjectRetention": "s3:GetObjectRetention",
}
# An operation on a given version of an object is its own action.
# (Legal holds and retention are one action for any version.)
_S3_VERSION_ACTIONS = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
}
_S3_BUCKET_ACTIONS = {
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
}


def _object_arn(bucket: str, key: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}/{key}"


def _copy_source(source: Any) -> tuple[str, str, str | None]:
    if isinstance(source, dict):
        return source["Bucket"], source["Key"], source.get("VersionId")
    path, _, query = str(source).partition("?versionId=")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    return bucket, key, query or None


def _s3(operation: str, params: dict[str, Any]) -> list[Authorisation]:
    bucket = params["Bucket"]
    if operation in _S3_BUCKET_ACTIONS:
        return [Authorisation(_S3_BUCKET_ACTIONS[operation], f"arn:{PARTITION}:s3:::{bucket}")]
    if operation == "DeleteObjects":
        return [
            Authorisation(
                "s3:DeleteObjectVersion" if item.get("VersionId") else "s3:DeleteObject",
                _object_arn(bucket, item["Key"]),
            )
            for item in params["Delete"]["Objects"]
        ]
    if operation not in _S3_OBJECT_ACTIONS:
        raise UnknownOperation(f"no IAM rule for s3:{operation}")
    action = _S3_OBJECT_ACTIONS[operation]
    if params.get("VersionId"):
        action = _S3_VERSION_ACTIONS.get(action, action)
    found = [Authorisation(action, _object_arn(bucket, params["Key"]))]
    if "CopySource" in params:
        source_bucket, source_key, source_version = _copy_source(params["CopySource"])
        read = "s3:GetObjectVersion" if source_version else "s3:GetObject"
        found.append(Authorisation(read, _object_arn(source_bucket, source_key)))
    return found


# --- SQS, SSM, SNS, EventBridge, Step Functions, Scheduler --------------------------------------------

_SQS_ACTIONS = {
    "SendMessageBatch": "sqs:SendMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


def _queue_arn(url: str) -> str:
    account, name = urlparse(url).path.strip("/").split("/")[-2:]
    return _arn("sqs", name, account=account)


def _sqs(operation: str, params: dict[str, Any]) -> list[Authorisation]:
    if operation == "GetQueueUrl":
        return [Authorisation("sqs:GetQueueUrl", _arn("sqs", params["QueueName"]))]
    return [Authorisation(_SQS_ACTIONS.get(operation, f"sqs:{operation}"), _queue_arn(params["QueueUrl"]))]


def _ssm(operation: str, params: dict[str, Any]) -> list[Authorisation]:
    names = params.get("Names") or [params["Name"]]
    return [Authorisation(f"ssm:{operation}", _arn("ssm", f"parameter/{name.lstrip('/')}")) for name in names]


def _sns(operation: str, params: dict[str, Any]) -> list[Authorisation]:
    if "TopicArn" in params or "TargetArn" in params:
        return [Authorisation(f"sns:{operation}", params.get("TopicArn") or params["TargetArn"])]
    if "SubscriptionArn" in params:
        # IAM has no resource type for a subscription: these actions are authorised against "*".
        return [Authorisation(f"sns:{operation}", "*")]
    raise UnknownOperation(f"no IAM rule for sns:{operation}")


def _events(operation: str, params: dict[str, Any]) -> list[Authorisation]:
    if operation != "PutEvents":
        raise UnknownOperation(f"no IAM rule for events:{operation}")
    found = []
    for entry in params["Entries"]:
        bus = entry.get("EventBusName") or "default"
        found.append(
            Authorisation("events:PutEvents", bus if bus.startswith("arn:") else _arn("events", f"event-bus/{bus}"))
        )
    return found


def _states(operation: str, params: dict[str, Any]) -> list[Authorisation]:
    arn = params.get("stateMachineArn") or params["executionArn"]
    return [Authorisation(f"states:{operation}", arn)]


def _scheduler(operation: str, params: dict[str, Any]) -> list[Authorisation]:
    group = params.get("GroupName") or "default"
    found = [Authorisation(f"scheduler:{operation}", _arn("scheduler", f"schedule/{group}/{params['Name']}"))]
    role = (params.get("Target") or {}).get("RoleArn")
    if role:
        # Handing Scheduler a role to fire the schedule with is passing that role.
        found.append(Authorisation("iam:PassRole", role, (("iam:PassedToService", "scheduler.amazonaws.com"),)))
    return found


_RULES = {
    "dynamodb": _dynamodb,
    "s3": _s3,
    "sqs": _sqs,
    "ssm": _ssm,
    "sns": _sns,
    "events": _events,
    "states": _states,
    "scheduler": _scheduler,
}
