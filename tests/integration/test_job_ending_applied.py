"""The one module that ends jobs, applied to the emulated table: each outcome ends the job and, for a job
that regenerates a report, its re-export, the original's claim and the history together — or, for a stale
attempt, nothing at all."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from report_export.aws import clients
from report_export.core.history import SERVICE_ACTOR
from report_export.core.models.common import FileReference, JobStatus
from report_export.core.settings import get_settings
from report_export.jobs import ending as ending_module
from report_export.jobs.ending import Cancelled, Failed, Guard, JobEnding, Succeeded, job_ending

from support.reexports import JOBS, REEXPORTS, history, put_succeeded_report
from support.tables import job_repository, reexport_repository, table

NEW_FILE = FileReference(key="tenants/tenant-a/jobs/x/1/new.csv", size_bytes=5, sha256="c" * 64, row_count=1)
OUTCOMES = {
    "succeeded": Succeeded(NEW_FILE, None, datetime(2030, 1, 1, tzinfo=UTC)),
    "failed": Failed("NO_DATA", "nothing in the period"),
    "cancelled": Cancelled(by=SERVICE_ACTOR),
}


def ending() -> JobEnding:
    return job_ending(get_settings(), table())


def claim(job_id: str, now: str = "2030-01-01T00:00:00.000Z", lease_until: str = "2030-01-01T00:10:00.000Z"):
    claimed = job_repository().claim("tenant-a", job_id, now=now, lease_until=lease_until)
    assert claimed is not None
    return claimed


def requested_reexport(api, aws) -> dict:
    report = put_succeeded_report(aws)
    response = api.call("POST", REEXPORTS, body={"report_id": report.id})
    assert response.status == 202, response.body
    return response.json


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_each_outcome_ends_the_job_and_its_reexport_together(api, aws, status):
    requested = requested_reexport(api, aws)
    claimed = claim(requested["job_id"])

    ended = ending().end(claimed, OUTCOMES[status], guard=Guard.ATTEMPT)

    assert ended is not None and ended.record is not None
    job = api.call("GET", f"{JOBS}/{requested['job_id']}").json
    record = api.call("GET", f"{REEXPORTS}/{requested['id']}").json
    assert (job["status"], record["status"]) == (status, status)
    assert record["completed_at"] is not None
    assert api.call("GET", f"{JOBS}/{requested['report_id']}").json["active_reexport_id"] is None
    [*_, entry] = history(api, requested["report_id"])
    assert entry["event"] == ("reexport_cancelled" if status == "cancelled" else "reexport_completed")
    assert entry["details"]["reexport_id"] == requested["id"]


def test_a_stale_attempt_ends_nothing(api, aws, monkeypatch):
    requested = requested_reexport(api, aws)
    stale = claim(requested["job_id"])
    claim(requested["job_id"], now="2030-01-01T00:20:00.000Z", lease_until="2030-01-01T00:30:00.000Z")  # lease ran out
    job_before = job_repository().get("tenant-a", requested["job_id"], consistent=True)
    record_before = reexport_repository().get("tenant-a", requested["id"], consistent=True)
    history_before = history(api, requested["report_id"])

    client = clients.dynamodb()
    real_transact = client.transact_write_items
    transactions = []
    monkeypatch.setattr(client, "transact_write_items", lambda **kw: transactions.append(kw) or real_transact(**kw))

    for outcome in OUTCOMES.values():
        assert ending().end(stale, outcome, guard=Guard.ATTEMPT) is None

    assert len(transactions) == 3  # one each: a job no longer as read is not tried again

    assert job_repository().get("tenant-a", requested["job_id"], consistent=True) == job_before
    assert reexport_repository().get("tenant-a", requested["id"], consistent=True) == record_before
    assert history(api, requested["report_id"]) == history_before
    assert job_before.job.status is JobStatus.RUNNING and job_before.attempt == 2


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_a_job_without_a_reexport_ends_alone(api, aws, status):
    job_id = api.create_job().json["id"]
    claimed = claim(job_id)

    ended = ending().end(claimed, OUTCOMES[status], guard=Guard.ATTEMPT)

    assert ended is not None and ended.record is None
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert job["status"] == status
    assert job["phase"] is None
    if status == "succeeded":
        assert (job["file_path"], job["sha256"], job["progress_pct"]) == (NEW_FILE.key, NEW_FILE.sha256, 100)
    if status == "failed":
        assert (job["error_code"], job["error_message"]) == ("NO_DATA", "nothing in the period")


def test_a_queued_job_read_at_an_older_version_is_not_cancelled(api, aws):
    requested = requested_reexport(api, aws)
    stale = job_repository().get("tenant-a", requested["job_id"], consistent=True)
    claim(requested["job_id"])  # the generator moved it on

    assert ending().end(stale, Cancelled(by="user-2"), guard=Guard.VERSION) is None

    assert api.call("GET", f"{JOBS}/{requested['job_id']}").json["status"] == "running"
    assert api.call("GET", f"{REEXPORTS}/{requested['id']}").json["status"] == "pending"


def test_a_reexport_that_keeps_refusing_still_lets_its_job_end_alone(api, aws, monkeypatch):
    # A job left running after its message was acknowledged would never be claimed again; the record left
    # active is repaired by the next request for it.
    requested = requested_reexport(api, aws)
    claimed = claim(requested["job_id"])
    client = clients.dynamodb()
    real_transact = client.transact_write_items
    conflict = {"Error": {"Code": "TransactionCanceledException", "Message": "TransactionConflict"}}

    def the_record_always_conflicts(**kwargs):
        # The job's own items are its update and its leaving the tenant's active jobs; more touch the record.
        if len(kwargs["TransactItems"]) > 2:
            raise ClientError(conflict, "TransactWriteItems")
        return real_transact(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", the_record_always_conflicts)
    monkeypatch.setattr(ending_module, "_END_BACKOFF_SECONDS", 0)

    ended = ending().end(claimed, OUTCOMES["failed"], guard=Guard.ATTEMPT)

    assert ended is not None and ended.record is None
    assert api.call("GET", f"{JOBS}/{requested['job_id']}").json["status"] == "failed"
    monkeypatch.undo()
    repaired = api.call("GET", f"{REEXPORTS}/{requested['id']}").json
    assert repaired["status"] == "pending"  # until its next request repairs it
    assert api.call("DELETE", f"{REEXPORTS}/{requested['id']}").status == 409
    repaired = api.call("GET", f"{REEXPORTS}/{requested['id']}").json
    assert (repaired["status"], repaired["error_code"]) == ("failed", "NO_DATA")
    assert api.call("GET", f"{JOBS}/{requested['report_id']}").json["active_reexport_id"] is None


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_the_record_retention_starts_when_the_job_ends(api, aws, status):
    job_id = api.create_job().json["id"]
    queued = aws.dynamodb.get_item(
        TableName=aws.table_name, Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{job_id}"}}
    )
    before = time.time()

    ending().end(claim(job_id), OUTCOMES[status], guard=Guard.ATTEMPT)

    item = aws.dynamodb.get_item(
        TableName=aws.table_name, Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{job_id}"}}
    )
    assert "ttl" not in queued["Item"]  # an unfinished job is never removed
    expected = before + get_settings().record_retention_days * 86400
    assert expected - 5 <= int(item["Item"]["ttl"]["N"]) <= expected + 60
