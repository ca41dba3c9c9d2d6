"""boto3 clients, created once per cold start and reused by every invocation."""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

from report_export.aws.deadline import deadline

# Fail fast rather than hold an API request open: API Gateway gives up after 30 s anyway. Each attempt
# is also sent only while the invocation has time for it (report_export.aws.deadline).
_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})


@cache
def dynamodb():
    return deadline.guard(boto3.client("dynamodb", config=_CONFIG))


@cache
def sqs():
    return deadline.guard(boto3.client("sqs", config=_CONFIG))


@cache
def ssm():
    return deadline.guard(boto3.client("ssm", config=_CONFIG))


@cache
def s3():
    # SigV4 everywhere: presigned URLs in every region, and the only kind KMS-encrypted objects accept.
    return deadline.guard(boto3.client("s3", config=_CONFIG.merge(Config(signature_version="s3v4"))))


@cache
def stepfunctions():
    return deadline.guard(boto3.client("stepfunctions", config=_CONFIG))


@cache
def sns():
    return deadline.guard(boto3.client("sns", config=_CONFIG))


@cache
def events():
    return deadline.guard(boto3.client("events", config=_CONFIG))


@cache
def scheduler():
    return deadline.guard(boto3.client("scheduler", config=_CONFIG))


def reset() -> None:
    """Forget the clients (tests start each case against a fresh emulated account)."""
    for factory in (dynamodb, sqs, ssm, s3, stepfunctions, sns, events, scheduler):
        factory.cache_clear()
