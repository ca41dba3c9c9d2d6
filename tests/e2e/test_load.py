"""Load over the local stack: bursts of ordinary clients, every job accounted for. Prints its figures
(throughput, latency percentiles, time until every job ended)."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .running_stack import RunningStack

JOBS = "/api/v1/reports/jobs"
BODY = {"job_type": "FEED_INTAKE_EXPORT", "format": "csv", "start_date": "2025-01-01", "end_date": "2025-01-31"}
# Spread over tenants: each stays under its share of active jobs (MAX_ACTIVE_JOBS_PER_TENANT, 100).
TENANTS = 4
PER_TENANT = 50
TERMINAL = {"succeeded", "failed", "cancelled"}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def burst(stack: RunningStack, requests_to_send: list[tuple[str, dict]]) -> list[tuple[int, dict, float]]:
    """Every request at once (as near as threads allow); each answer with its latency."""
    start = threading.Barrier(len(requests_to_send))
    headers = {tenant: stack.headers(tenant) for tenant in {tenant for tenant, _ in requests_to_send}}

    def create(item: tuple[str, dict]) -> tuple[int, dict, float]:
        tenant, body = item
        start.wait(timeout=60)
        sent = time.monotonic()
        response = requests.post(f"{stack.api}{JOBS}", json=body, headers=headers[tenant], timeout=120)
        return response.status_code, response.json(), time.monotonic() - sent

    with ThreadPoolExecutor(len(requests_to_send)) as pool:
        return list(pool.map(create, requests_to_send))


@pytest.mark.reliability(
    scenario="200 concurrent distinct creates",
    injected="200 POSTs released at once over four tenants, through the local gateway",
    checked="every one 201; 200 jobs, each listed once; all succeeded within 5 min",
)
def test_two_hundred_concurrent_creates_make_two_hundred_jobs_that_all_end(stack: RunningStack, measured: dict):
    tenants = [f"load-{uuid.uuid4().hex[:8]}" for _ in range(TENANTS)]
    began = time.monotonic()

    answers = burst(stack, [(tenant, BODY) for tenant in tenants for _ in range(PER_TENANT)])
    created_in = time.monotonic() - began

    assert [status for status, _, _ in answers] == [201] * len(answers), [a for a in answers if a[0] != 201][:3]
    ids = {body["id"] for _, body, _ in answers}
    assert len(ids) == TENANTS * PER_TENANT
    latencies = [latency for _, _, latency in answers]

    ended: dict[str, str] = {}
    deadline = time.monotonic() + 300
    while len(ended) < len(ids) and time.monotonic() < deadline:
        for tenant in tenants:
            page = requests.get(
                f"{stack.api}{JOBS}", params={"limit": 100}, headers=stack.headers(tenant), timeout=30
            ).json()
            # Each tenant's jobs fit in one page of 100; more than were created would be a duplicate.
            assert page["next_cursor"] is None and len(page["items"]) == PER_TENANT
            ended.update({job["id"]: job["status"] for job in page["items"] if job["status"] in TERMINAL})
        time.sleep(1)
    all_ended_in = time.monotonic() - began

    print(
        f"\n{len(ids)} creates at once: {len(ids) / created_in:.0f} creates/s, latency p50 "
        f"{statistics.median(latencies) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms; "
        f"every job ended after {all_ended_in:.1f} s"
    )
    measured["creates/s"] = f"{len(ids) / created_in:.0f}"
    measured["create p50"] = f"{statistics.median(latencies) * 1000:.0f} ms"
    measured["create p99"] = f"{percentile(latencies, 0.99) * 1000:.0f} ms"
    measured["all ended after"] = f"{all_ended_in:.1f} s"
    assert set(ended) == ids, f"{len(ids) - len(ended)} jobs never ended"
    assert set(ended.values()) == {"succeeded"}


@pytest.mark.reliability(
    scenario="50 concurrent identical creates",
    injected="50 POSTs with one idempotency key at once",
    checked="one 201, 49 × 200 with the same job; one job listed",
)
def test_fifty_concurrent_identical_creates_make_one_job(stack: RunningStack):
    tenant = f"load-{uuid.uuid4().hex[:8]}"
    body = {**BODY, "idempotency_key": f"same-{uuid.uuid4().hex[:8]}"}

    answers = burst(stack, [(tenant, body)] * 50)

    statuses = [status for status, _, _ in answers]
    assert statuses.count(201) == 1 and statuses.count(200) == 49, statuses
    assert len({answer["id"] for _, answer, _ in answers}) == 1
    listed = requests.get(f"{stack.api}{JOBS}", headers=stack.headers(tenant), timeout=30).json()["items"]
    assert len(listed) == 1
