"""Fairness between tenants: at most MAX_ACTIVE_JOBS_PER_TENANT jobs queued or running per tenant; the
next create answers 429 TOO_MANY_ACTIVE_JOBS with Retry-After and writes nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from report_export.aws.dynamo.keys import active_jobs_key
from report_export.core.settings import get_settings
from report_export.jobs.service import job_service
from report_export.reexports.requests import reexport_requests
from report_export.schedules.exports import scheduled_exports

from conftest import valid_job_request
from support.reexports import put_succeeded_report, run_worker

JOBS = "/api/v1/reports/jobs"


@pytest.fixture
def at_most_two(monkeypatch):
    monkeypatch.setenv("MAX_ACTIVE_JOBS_PER_TENANT", "2")
    monkeypatch.setenv("ACTIVE_JOBS_RETRY_AFTER_SEC", "45")
    for cached in (get_settings, job_service, reexport_requests, scheduled_exports):
        cached.cache_clear()


def test_a_tenant_at_its_most_active_jobs_is_answered_429_and_nothing_is_written(api, aws, at_most_two):
    assert api.create_job().status == 201
    assert api.create_job().status == 201

    refused = api.create_job()

    assert (refused.status, refused.error_code) == (429, "TOO_MANY_ACTIVE_JOBS")
    assert refused.headers["retry-after"] == "45"
    assert len(aws.job_items("tenant-a")) == 2
    assert len(aws.queued_messages()) == 2


def test_another_tenant_is_not_held_back_by_one_at_its_most(api, aws, at_most_two):
    api.create_job(), api.create_job()

    assert api.create_job(tenant="tenant-b").status == 201


def test_finished_jobs_free_their_places(api, aws, at_most_two):
    api.create_job(), api.create_job()
    run_worker(aws)

    assert api.create_job().status == 201


def test_a_retry_of_a_job_that_was_made_gets_it_whatever_the_tenant_has_running(api, aws, at_most_two):
    made = api.create_job(valid_job_request(idempotency_key="made-before"))
    api.create_job()

    again = api.create_job(valid_job_request(idempotency_key="made-before"))

    assert (again.status, again.json["id"]) == (200, made.json["id"])


def test_a_reexport_counts_as_an_active_job_and_is_refused_at_the_limit(api, aws, at_most_two):
    report = put_succeeded_report(aws)
    api.create_job(), api.create_job()

    refused = api.call("POST", "/api/v1/report-reexports", body={"report_id": report.id})

    assert (refused.status, refused.error_code) == (429, "TOO_MANY_ACTIVE_JOBS")
    assert api.call("GET", "/api/v1/report-reexports").json["items"] == []


def active_ids(aws, tenant: str = "tenant-a") -> set[str]:
    item = aws.dynamodb.get_item(TableName=aws.table_name, Key=active_jobs_key(tenant), ConsistentRead=True)
    return set(item.get("Item", {}).get("active_jobs", {}).get("SS", []))


@pytest.fixture
def at_most_five(monkeypatch):
    monkeypatch.setenv("MAX_ACTIVE_JOBS_PER_TENANT", "5")
    for cached in (get_settings, job_service, reexport_requests, scheduled_exports):
        cached.cache_clear()


@pytest.mark.reliability(
    scenario="30 concurrent creates of one tenant with room for 5",
    injected="a burst of distinct creates at the same moment",
    checked="exactly 5 × 201 and 25 × 429; 5 jobs and 5 wake-ups written",
)
def test_a_burst_of_creates_at_the_same_moment_never_passes_the_limit(api, serialized_aws, at_most_five):
    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(lambda _: api.create_job(), range(30)))

    statuses = [answer.status for answer in answers]
    assert (statuses.count(201), statuses.count(429)) == (5, 25), [a.body for a in answers if a.status >= 500]
    made = {answer.json["id"] for answer in answers if answer.status == 201}
    assert {item["id"]["S"] for item in serialized_aws.job_items("tenant-a")} == made
    assert active_ids(serialized_aws) == made
    assert len(serialized_aws.queued_messages()) == 5


def test_a_burst_mixing_creates_and_reexports_never_passes_the_limit(api, serialized_aws, at_most_five):
    reports = [put_succeeded_report(serialized_aws) for _ in range(6)]
    requests = [("POST", JOBS, valid_job_request()) for _ in range(6)] + [
        ("POST", "/api/v1/report-reexports", {"report_id": report.id}) for report in reports
    ]

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda request: api.call(request[0], request[1], body=request[2]), requests))

    # Which kind wins the five places is a matter of timing: a job's create answers 201, a re-export's 202.
    statuses = [answer.status for answer in answers]
    assert set(statuses) <= {201, 202, 429}, [a.body for a in answers if a.status not in (201, 202, 429)]
    assert statuses.count(201) + statuses.count(202) == 5
    assert statuses.count(429) == 7
    assert len(active_ids(serialized_aws)) == 5


@pytest.mark.parametrize("ending", ["generated", "failed", "cancelled while queued"])
def test_every_way_a_job_ends_gives_its_place_back(api, aws, at_most_two, upstream, ending):
    first = api.create_job().json["id"]
    api.create_job()
    if ending == "cancelled while queued":
        assert api.call("DELETE", f"{JOBS}/{first}").json["status"] == "cancelled"
    else:
        if ending == "failed":
            upstream.knobs.always_fail_with = 400
        run_worker(aws)

    assert first not in active_ids(aws)
    assert api.create_job().status == 201


def test_a_reexport_gives_its_place_back_when_its_job_ends(api, aws, at_most_two):
    report = put_succeeded_report(aws)
    requested = api.call("POST", "/api/v1/report-reexports", body={"report_id": report.id}).json
    assert active_ids(aws) == {requested["job_id"]}

    run_worker(aws)

    assert active_ids(aws) == set()


def test_places_held_by_jobs_that_have_ended_are_taken_back_before_a_create_is_refused(api, aws, at_most_two):
    # Written outside the service: an id whose job has succeeded, and one whose record is gone.
    ended = put_succeeded_report(aws)
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key=active_jobs_key("tenant-a"),
        UpdateExpression="ADD active_jobs :ids",
        ExpressionAttributeValues={":ids": {"SS": [ended.id, "01950000-0000-7000-8000-0000000000ff"]}},
    )

    made = api.create_job()
    api.create_job()
    refused = api.create_job()

    assert made.status == 201
    assert (refused.status, refused.error_code) == (429, "TOO_MANY_ACTIVE_JOBS")
    assert len(active_ids(aws)) == 2 and ended.id not in active_ids(aws)
