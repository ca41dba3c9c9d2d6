"""Moving a job's clock back, so the sweeper sees it as due without waiting for real time to pass."""

from __future__ import annotations

from typing import Any

LONG_AGO = "2020-01-01T00:00:00.000Z"


def _set(aws: Any, tenant: str, job_id: str, expression: str, values: dict[str, Any]) -> None:
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key={"PK": {"S": f"TENANT#{tenant}"}, "SK": {"S": f"JOB#{job_id}"}},
        UpdateExpression=expression,
        ExpressionAttributeValues=values,
    )


def forget_when_the_job_was_queued(aws: Any, tenant: str, job_id: str) -> None:
    """A queued job last changed long ago: its wake-up may have been lost."""
    _set(
        aws,
        tenant,
        job_id,
        "SET GSI3SK = :due, updated_at = :at",
        {":at": {"S": LONG_AGO}, ":due": {"S": f"{LONG_AGO}#{tenant}#{job_id}"}},
    )


def expire_the_lease(aws: Any, tenant: str, job_id: str) -> None:
    """A running job whose worker stopped extending its lease long ago."""
    _set(
        aws,
        tenant,
        job_id,
        "SET lease_expires_at = :at, GSI3SK = :due",
        {":at": {"S": LONG_AGO}, ":due": {"S": f"{LONG_AGO}#{tenant}#{job_id}"}},
    )


def make_the_announcement_due(aws: Any, tenant: str, job_id: str) -> None:
    """An ended, unannounced job that ended (or was last re-announced) long ago."""
    _set(aws, tenant, job_id, "SET GSI3SK = :due", {":due": {"S": f"{LONG_AGO}#{tenant}#{job_id}"}})
