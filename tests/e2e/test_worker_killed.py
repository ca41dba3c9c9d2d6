"""A worker killed mid-file, for real: the generator's process is sent SIGKILL while its multipart upload
is open (as Lambda loses a sandbox that runs out of memory). The job's retry — its lease runs out, the
sweeper requeues it — produces exactly one complete file, and the dead attempt's upload is aborted."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from .running_stack import JOBS, RunningStack, start_stack, stop_stack, wait_for_job

ROWS = 120_000  # about 14 MB of CSV: the first 8 MiB part is uploaded long before the last row
LEASE_SEC = 30  # the shortest lease the settings allow
SWEEPER = "SweeperFunction.EveryFewMinutes"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("killed"), "--env", f"JOB_LEASE_SEC={LEASE_SEC}", "--visibility-timeout", "2"
    )
    yield running
    assert stop_stack(running) == 0, running.log_tail()


@pytest.fixture
def s3(stack: RunningStack) -> Any:
    return stack.aws_client("s3")


def open_uploads(s3: Any, prefix: str) -> list[tuple[str, str]]:
    """(bucket, key) of every multipart upload open under the prefix, in any bucket."""
    found = []
    for bucket in s3.list_buckets()["Buckets"]:
        uploads = s3.list_multipart_uploads(Bucket=bucket["Name"], Prefix=prefix).get("Uploads", [])
        found += [(bucket["Name"], upload["Key"]) for upload in uploads]
    return found


def busy_generators(stack: RunningStack) -> list[int]:
    status = requests.get(f"{stack.api}/_local/status", timeout=10).json()
    return status["functions"]["GeneratorFunction"]["busy"]


def wait_until(condition: Any, timeout_s: float, what: str, stack: RunningStack) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s:\n{stack.log_tail()}")
        time.sleep(0.2)
    return value


@pytest.mark.reliability(
    scenario="Worker killed mid-file",
    injected="SIGKILL to the generator's process while its multipart upload is open (local stack)",
    checked="the retry (lease run out, sweeper) makes exactly one complete file; no upload left open",
)
def test_a_worker_killed_mid_file_is_retried_into_exactly_one_complete_file(stack, s3, measured):
    stack.knobs(rows=ROWS, delay_sec=0.05)
    body = {
        "job_type": "FEED_INTAKE_EXPORT",
        "format": "csv",
        "farm_id": "farm-killed",
        "start_date": "2025-01-01",
        "end_date": "2025-12-31",
    }
    job_id = requests.post(f"{stack.api}{JOBS}", json=body, headers=stack.headers(), timeout=30).json()["id"]
    prefix = f"tenants/tenant-a/jobs/{job_id}/"

    [(bucket, first_key)] = wait_until(lambda: open_uploads(s3, prefix), 120, "a multipart upload", stack)
    [pid] = busy_generators(stack)
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    stack.knobs(delay_sec=0)
    assert first_key.startswith(f"{prefix}1/")

    # The wake-up comes back and finds the job still leased; once the lease has run out the sweeper
    # requeues it, and the next attempt takes it over.
    time.sleep(LEASE_SEC + 1)
    fired = requests.post(f"{stack.api}/_local/schedules/{SWEEPER}", timeout=60)
    assert fired.status_code == 200, fired.text
    job = wait_for_job(stack, job_id, {"succeeded", "failed"}, timeout_s=180)
    measured["succeeded after the kill"] = f"{time.monotonic() - started:.0f} s (lease {LEASE_SEC} s)"

    assert (job["status"], job["rows_written"]) == ("succeeded", ROWS), job
    stored = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    assert [item["Key"] for item in stored] == [job["file_path"]]
    assert job["file_path"].startswith(f"{prefix}2/")
    assert open_uploads(s3, prefix) == []
    content = s3.get_object(Bucket=bucket, Key=job["file_path"])["Body"].read()
    assert hashlib.sha256(content).hexdigest() == job["sha256"]
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"))))
    assert len(rows) == ROWS + 1 and rows[1][0] == "rec-00000000" and rows[-1][0] == f"rec-{ROWS - 1:08d}"
