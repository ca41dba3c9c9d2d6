"""Helpers for the re-export tests: finished reports put straight into the emulated account, the
generator run until the queue is empty, and readers of what the table holds."""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from uuid6 import uuid7

from report_export.aws.dynamo.keys import active_jobs_key
from report_export.core.history import HistoryEventType, new_event
from report_export.core.models.common import JobStatus, JobType, now_utc
from report_export.core.models.jobs import Job

from conftest import LambdaContextStub
from support.tables import job_repository
from support.worker import deliver_once

JOBS = "/api/v1/reports/jobs"
REEXPORTS = "/api/v1/report-reexports"
REPORT_BODY = b"id,date,farm_id\r\nk-1,2025-01-01,farm-1\r\n"

_deserializer = TypeDeserializer()


def put_succeeded_report(aws: Any, tenant: str = "tenant-a", *, body: bytes = REPORT_BODY, **fields: Any) -> Job:
    """A report that succeeded, as the pipeline leaves it (its file in the bucket), without running it."""
    job_id = str(uuid7())
    file_name = "kpi_feeding_export_2025-01-01_2025-01-31.csv"
    key = f"tenants/{tenant}/jobs/{job_id}/1/{file_name}"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=body, ContentType="text/csv")
    moment = now_utc()
    job = Job(
        **{
            "id": job_id,
            "tenant_id": tenant,
            "requested_by": "author-1",
            "job_type": JobType.KPI_FEEDING_EXPORT,
            "format": "csv",
            "farm_id": "farm-1",
            "start_date": "2025-01-01",
            "end_date": "2025-01-31",
            "filters": {"source": "MANUAL"},
            "status": JobStatus.SUCCEEDED,
            "progress_pct": 100,
            "file_path": key,
            "file_name": file_name,
            "mime_type": "text/csv",
            "size_bytes": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "row_count": 1,
            "created_at": moment,
            "updated_at": moment,
            **fields,
        }
    )
    put_job(aws, job)
    return job


def put_job(aws: Any, job: Job, *, params_hash: str = "test") -> None:
    """A job written as the API writes one (with its history entry "created"), whatever its status; only a
    queued or running one takes a place among its tenant's active jobs, as it would have."""
    created = new_event(job.id, HistoryEventType.CREATED, actor=job.requested_by, at=job.created_at)
    repository = job_repository()
    items = repository.new_job_items(job, params_hash=params_hash, created=created, most_active=1000)
    if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
        items = [item for item in items if item.get("Update", {}).get("Key") != active_jobs_key(job.tenant_id)]
    repository.table.transact(items)


def generator_handler() -> Any:
    from generator.handler import lambda_handler

    return lambda_handler


def run_worker(aws: Any) -> list[dict[str, Any]]:
    """Deliver until the queue is empty, then let every store-and-notify execution finish."""
    while deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub()) is not None:
        pass
    return aws.wait_for_executions()


def generated_report(api: Any, aws: Any, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A report produced by the real pipeline, as the API shows it once it succeeded."""
    job_id = api.create_job(body).json["id"]
    run_worker(aws)
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert job["status"] == "succeeded", job
    return job


def reexport_items(aws: Any, tenant: str = "tenant-a") -> list[dict[str, Any]]:
    response = aws.dynamodb.query(
        TableName=aws.table_name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues={":pk": {"S": f"TENANT#{tenant}"}, ":prefix": {"S": "REEXPORT#"}},
        ConsistentRead=True,
    )
    return [{name: _deserializer.deserialize(value) for name, value in item.items()} for item in response["Items"]]


def history(api: Any, job_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    response = api.call("GET", f"{JOBS}/{job_id}/history", query={"limit": 100}, **kwargs)
    assert response.status == 200, response.body
    return response.json["items"]


def object_bytes(aws: Any, key: str) -> bytes:
    return aws.s3.get_object(Bucket=aws.bucket, Key=key)["Body"].read()


def keyed_rows(body: bytes, key_columns: tuple[str, ...]) -> dict[tuple[str, ...], list[str]]:
    """A CSV file's rows by their key, all in memory: the test's own, independent view of a diff."""
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    header = rows[0]
    positions = [header.index(name) for name in key_columns]
    return {tuple(row[position] for position in positions): row for row in rows[1:]}
