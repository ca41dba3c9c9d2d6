"""The re-export's main use, end to end over HTTP on the local stack: a report whose file was lost is
regenerated from its stored parameters, and the new file is byte-identical to the original."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import requests

from .running_stack import JOBS, RunningStack, wait_for_job

REEXPORTS = "/api/v1/report-reexports"


def wait_for_reexport(stack: RunningStack, reexport_id: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        record = requests.get(f"{stack.api}{REEXPORTS}/{reexport_id}", headers=stack.headers(), timeout=10).json()
        if record["status"] in {"succeeded", "failed", "cancelled"}:
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"re-export {reexport_id} is still {record['status']}:\n{stack.log_tail()}")
        time.sleep(0.2)


def download(stack: RunningStack, job_id: str) -> bytes:
    link = requests.get(f"{stack.api}{JOBS}/{job_id}/download", headers=stack.headers(), timeout=10)
    assert link.status_code == 200, link.text
    return requests.get(link.json()["download_url"], timeout=10).content


def test_a_report_whose_file_was_deleted_is_regenerated_byte_identical(stack):
    # Given a succeeded report, downloaded once
    body = {
        "job_type": "BUFDIR_ACTIVITY_REPORT",
        "format": "csv",
        "start_date": "2025-01-01",
        "end_date": "2025-12-31",
    }
    admin = stack.headers("tenant-a", "tenant_admin")
    created = requests.post(f"{stack.api}{JOBS}", json=body, headers=admin, timeout=10)
    assert created.status_code == 201, created.text
    original = wait_for_job(stack, created.json()["id"], {"succeeded", "failed"})
    assert original["status"] == "succeeded", original
    original_bytes = download(stack, original["id"])
    assert hashlib.sha256(original_bytes).hexdigest() == original["sha256"]

    # When its file is lost from the bucket
    s3 = stack.aws_client("s3")
    bucket = next(bucket["Name"] for bucket in s3.list_buckets()["Buckets"] if "report" in bucket["Name"])
    s3.delete_object(Bucket=bucket, Key=original["file_path"])
    gone = requests.get(f"{stack.api}{JOBS}/{original['id']}/download", headers=stack.headers(), timeout=10)
    assert (gone.status_code, gone.json()["error"]["code"]) == (410, "REPORT_FILE_GONE")

    # Then an admin re-exports it and downloads a file identical to the original
    requested = requests.post(
        f"{stack.api}{REEXPORTS}",
        json={"report_id": original["id"], "reason": "file lost before the funder's audit"},
        headers=admin,
        timeout=10,
    )
    assert requested.status_code == 202, requested.text
    record = wait_for_reexport(stack, requested.json()["id"])
    assert record["status"] == "succeeded", record
    assert record["matches_original"] is True
    assert record["original_file"]["sha256"] == original["sha256"]
    assert record["new_file"]["sha256"] == original["sha256"]
    regenerated = requests.get(record["download_url"], timeout=10).content
    assert regenerated == original_bytes
    assert download(stack, record["job_id"]) == original_bytes

    # And the report's history tells the story: created, downloaded, re-exported (by whom, why)
    history = requests.get(f"{stack.api}{JOBS}/{original['id']}/history", headers=stack.headers(), timeout=10)
    assert history.status_code == 200, history.text
    events = history.json()["items"]
    kinds = [event["event"] for event in events]
    assert kinds[0] == "created"
    assert "download_url_issued" in kinds
    assert kinds.index("reexport_requested") < kinds.index("reexport_completed")
    requested_event = events[kinds.index("reexport_requested")]
    assert requested_event["details"]["reason"] == "file lost before the funder's audit"
