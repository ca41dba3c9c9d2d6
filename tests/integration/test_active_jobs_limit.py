"""Fairness between tenants: at most MAX_ACTIVE_JOBS_PER_TENANT jobs queued or running per tenant; the
next create answers 429 TOO_MANY_ACTIVE_JOBS with Retry-After and writes nothing."""

from __future__ import annotations

import pytest

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
