"""API benchmark: create, get and list through the API handler, with the template's resources in moto.

Each request is an API Gateway event handed to `api.handler.lambda_handler`, as in Lambda, built from
the sample events in events/. moto runs in process, so the figures include moto's own work on every
DynamoDB and SQS call: they compare requests with each other, not with DynamoDB's latency.

Listing is the figure that matters as tenants grow: a page of jobs is one DynamoDB Query on the
tenant's key, so a page costs the same in a tenant with 10,000 jobs as in one with 100. A Scan, or a
filter applied after reading, would grow with the table.

    .venv/bin/python bench/bench_api.py            # 300 creates, 10,000 jobs against 100
    .venv/bin/python bench/bench_api.py --short    # proves it works (CI)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT / "functions" / "api"), str(ROOT)]
EVENTS = ROOT / "events"
BIG_TENANT, SMALL_TENANT, NEW_TENANT = "tenant-10k", "tenant-100", "tenant-new"


def _event(name: str, tenant: str, **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(json.loads((EVENTS / name).read_text()))
    event["requestContext"]["authorizer"]["jwt"]["claims"].update(tenant_id=tenant, roles="[tenant_admin]")
    event["requestContext"]["requestId"] = f"bench-{uuid.uuid4()}"
    event.update(changes)
    return event


class _Context:
    """What the handler reads of Lambda's context object."""

    function_name = "report-export-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:report-export-api"
    memory_limit_in_mb = 512
    aws_request_id = "bench"
    log_group_name = log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


class _DynamoReads:
    """The DynamoDB operations the service sends, and how many items each read (ScannedCount)."""

    def __init__(self) -> None:
        from report_export.aws import clients

        self._calls: list[tuple[str, int]] = []
        clients.dynamodb().meta.events.register("after-call.dynamodb", self._record)

    def _record(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        read = parsed.get("ScannedCount", parsed.get("Count"))
        self._calls.append((model.name, read if read is not None else int("Item" in parsed)))

    def start(self) -> None:
        self._calls.clear()

    def per_request(self, requests: int) -> str:
        operations = sorted({name for name, _ in self._calls})  # what each request sends, in all
        scanned = sum(count for _, count in self._calls)
        return f"{len(self._calls) / requests:.1f} calls ({', '.join(operations)}), {scanned / requests:.1f} items read"


def _timed(handler: Any, context: Any, event: dict[str, Any], expected: int) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = handler(event, context)
    elapsed = time.perf_counter() - started
    if response["statusCode"] != expected:
        raise RuntimeError(f"{event['routeKey']} answered {response['statusCode']}: {response['body'][:300]}")
    return elapsed, json.loads(response["body"] or "null")


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000


def _seed(tenant: str, template_job: dict[str, Any], count: int) -> None:
    """Finished jobs written as the service writes them (codecs.job_item), in batches."""
    from report_export.aws import clients
    from report_export.aws.dynamo.codecs import job_item, serialize
    from report_export.core.models.common import JobStatus
    from report_export.core.models.jobs import Job
    from report_export.core.settings import get_settings

    dynamodb, table = clients.dynamodb(), get_settings().table_name
    base = Job.model_validate(template_job)
    items = []
    for _ in range(count):
        job = base.model_copy(update={"id": str(uuid.uuid4()), "tenant_id": tenant, "status": JobStatus.SUCCEEDED})
        items.append({"PutRequest": {"Item": serialize(job_item(job, version=1, params_hash="bench"))}})
    for start in range(0, len(items), 25):
        dynamodb.batch_write_item(RequestItems={table: items[start : start + 25]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true")
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--requests", type=int, default=300, help="gets and list pages measured per case")
    parser.add_argument("--jobs", type=int, nargs=2, default=[100, 10_000], help="jobs in the small and big tenant")
    args = parser.parse_args()
    if args.short:
        args.creates, args.requests, args.jobs = 10, 10, [30, 200]

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
    )
    import boto3
    from moto import mock_aws

    from local.parameters import read_template
    from local.resources import assign_physical_ids, deploy
    from local.runtime import function_specs
    from local.template import TEMPLATE_PATH

    # Powertools prints its metrics when 100 accumulate, even with metrics disabled: not this output.
    with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
        template = read_template(TEMPLATE_PATH)
        assign_physical_ids(template, aws_endpoint="http://moto.invalid", api_url="https://api.example.test")
        deploy(template, boto3.client)
        os.environ.update(function_specs(template)["ApiFunction"].environment)
        os.environ.update(MAX_ACTIVE_JOBS_PER_TENANT="1000", POWERTOOLS_LOG_LEVEL="WARNING")
        from api.handler import lambda_handler

        context = _Context()
        reads = _DynamoReads()
        scanned: dict[str, str] = {}

        body = json.loads(_event("api_create_job.json", NEW_TENANT)["body"])
        creates, created = [], []
        reads.start()
        for number in range(args.creates):
            event = _event(
                "api_create_job.json", NEW_TENANT, body=json.dumps({**body, "idempotency_key": f"b{number}"})
            )
            elapsed, job = _timed(lambda_handler, context, event, 201)
            creates.append(elapsed)
            created.append(job)
        template_job = {name: value for name, value in created[0].items() if name not in ("links",)}
        scanned["create"] = reads.per_request(args.creates)

        gets = []
        reads.start()
        for _ in range(args.requests):
            job_id = random.choice(created)["id"]
            event = _event(
                "api_get_job.json",
                NEW_TENANT,
                rawPath=f"/api/v1/reports/jobs/{job_id}",
                pathParameters={"jobId": job_id},
            )
            event["requestContext"]["http"]["path"] = event["rawPath"]
            gets.append(_timed(lambda_handler, context, event, 200)[0])
        scanned["get"] = reads.per_request(args.requests)

        lists: dict[str, list[float]] = {}
        for tenant, count in zip((SMALL_TENANT, BIG_TENANT), args.jobs, strict=True):
            _seed(tenant, template_job, count)
            samples = lists[tenant] = []
            reads.start()
            for _ in range(args.requests):
                event = _event(
                    "api_list_jobs.json", tenant, rawQueryString="limit=20", queryStringParameters={"limit": "20"}
                )
                elapsed, page = _timed(lambda_handler, context, event, 200)
                if len(page["items"]) != 20:
                    raise RuntimeError(f"a page of {len(page['items'])} jobs, not 20")
                samples.append(elapsed)
            scanned[tenant] = reads.per_request(args.requests)

    rows = [
        (f"create ({args.creates} jobs)", creates, scanned["create"]),
        ("get", gets, scanned["get"]),
        (f"list, 20 a page, {args.jobs[0]:,} jobs in the tenant", lists[SMALL_TENANT], scanned[SMALL_TENANT]),
        (f"list, 20 a page, {args.jobs[1]:,} jobs in the tenant", lists[BIG_TENANT], scanned[BIG_TENANT]),
    ]
    print(f"{'request through the handler':<44} {'p50 ms':>8} {'p99 ms':>8}  DynamoDB per request")
    for label, samples, reads_per_request in rows:
        p50, p99 = _percentiles(samples)
        print(f"{label:<44} {p50:>8.2f} {p99:>8.2f}  {reads_per_request}")
    small, big = (statistics.median(lists[tenant]) for tenant in (SMALL_TENANT, BIG_TENANT))
    print(f"list p50 at {args.jobs[1]:,} jobs against {args.jobs[0]:,}: {big / small:.2f}x")
    for tenant, count in zip((SMALL_TENANT, BIG_TENANT), args.jobs, strict=True):
        print(f"DynamoDB per list page at {count:,} jobs: {scanned[tenant]}")


if __name__ == "__main__":
    main()
