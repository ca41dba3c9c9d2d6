"""A report written over several invocations whose generator process is killed mid-invocation, for real
(SIGKILL, as Lambda loses a sandbox): the job goes on from its last checkpoint and its file is the file
an uninterrupted run writes, with no row lost or written twice."""

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
from .test_worker_killed import busy_generators, wait_until

ROWS = 60_000
LEASE_SEC = 30
SWEEPER = "SweeperFunction.EveryFewMinutes"
BODY = {
    "job_type": "FEED_INTAKE_EXPORT",
    "format": "csv",
    "farm_id": "farm-continued",
    "start_date": "2025-01-01",
    "end_date": "2025-12-31",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("continued"),
        "--env",
        f"JOB_LEASE_SEC={LEASE_SEC}",
        "--env",
        "GENERATION_LEG_SEC=1",
        "--visibility-timeout",
        "2",
    )
    yield running
    assert stop_stack(running) == 0, running.log_tail()


def stored_under(s3: Any, prefix: str) -> tuple[list[str], list[str]]:
    objects, uploads = [], []
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        objects += [item["Key"] for item in s3.list_objects_v2(Bucket=name, Prefix=prefix).get("Contents", [])]
        uploads += [item["Key"] for item in s3.list_multipart_uploads(Bucket=name, Prefix=prefix).get("Uploads", [])]
    return objects, uploads


def read_file(s3: Any, key: str) -> bytes:
    for bucket in s3.list_buckets()["Buckets"]:
        try:
            return s3.get_object(Bucket=bucket["Name"], Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            continue
    raise AssertionError(f"{key} is in no bucket")


@pytest.mark.reliability(
    scenario="Generator killed between checkpoints",
    injected="SIGKILL to the generator's process mid-invocation, after an earlier invocation left a checkpoint",
    checked="the job goes on from the checkpoint; the file is the uninterrupted run's, byte for byte",
)
def test_a_generator_killed_mid_invocation_goes_on_from_its_checkpoint_into_the_same_file(stack, measured):
    s3 = stack.aws_client("s3")
    stack.knobs(rows=ROWS, delay_sec=0.02)
    job_id = requests.post(f"{stack.api}{JOBS}", json=BODY, headers=stack.headers(), timeout=30).json()["id"]
    prefix = f"tenants/tenant-a/jobs/{job_id}/"

    wait_until(lambda: any("/checkpoints/" in key for key in stored_under(s3, prefix)[0]), 120, "a checkpoint", stack)
    [pid] = wait_until(lambda: busy_generators(stack), 60, "a generator at work", stack)
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    stack.knobs(delay_sec=0)

    time.sleep(LEASE_SEC + 1)  # the killed invocation's lease runs out; the sweeper wakes the job again
    fired = requests.post(f"{stack.api}/_local/schedules/{SWEEPER}", timeout=60)
    assert fired.status_code == 200, fired.text
    job = wait_for_job(stack, job_id, {"succeeded", "failed", "cancelled"}, timeout_s=240)
    measured["succeeded after the kill"] = f"{time.monotonic() - started:.0f} s (lease {LEASE_SEC} s)"

    assert (job["status"], job["row_count"]) == ("succeeded", ROWS), job
    content = read_file(s3, job["file_path"])
    assert hashlib.sha256(content).hexdigest() == job["sha256"]
    ids = [row[0] for row in csv.reader(io.StringIO(content.decode("utf-8")))][1:]
    assert ids == [f"rec-{number:08d}" for number in range(ROWS)]  # none lost, none twice, in order
    assert stored_under(s3, prefix) == ([job["file_path"]], [])

    # The same report again, without a kill: the same bytes.
    again_id = requests.post(f"{stack.api}{JOBS}", json=BODY, headers=stack.headers(), timeout=30).json()["id"]
    again = wait_for_job(stack, again_id, {"succeeded", "failed"}, timeout_s=240)
    assert (again["status"], again["sha256"], again["size_bytes"]) == ("succeeded", job["sha256"], job["size_bytes"])
