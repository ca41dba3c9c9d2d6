"""A tenant schedule firing (what EventBridge Scheduler sends) becomes one job per period, read from the
schedule's record; the schedule lists its runs. The sweeper completes changes left half-applied."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import boto3
import pytest
from pydantic import ValidationError

from report_export.aws.scheduler import schedule_name
from report_export.sweeping.sweeper import sweeper

from conftest import LambdaContextStub
from support.schedules import (
    GROUP,
    SCHEDULES,
    leave_half_applied,
    schedule_items,
    schedule_repository,
    scheduler_schedule,
    valid_schedule,
)

JOBS = "/api/v1/reports/jobs"


def fire(tenant_id: str, schedule_id: str, at: str = "2026-03-01T05:00:00Z"):
    from scheduled_export.handler import lambda_handler

    event = {"tenant_id": tenant_id, "schedule_id": schedule_id, "scheduled_time": at}
    return lambda_handler(event, LambdaContextStub())


def create(api, **changes):
    response = api.call("POST", SCHEDULES, body=valid_schedule(**changes))
    assert response.status == 201, response.body
    return response.json


def test_a_firing_makes_the_job_its_record_defines_and_the_schedule_lists_the_run(api, aws):
    schedule = create(api)

    made = fire("tenant-a", schedule["id"])

    assert (made["start_date"], made["end_date"], made["replayed"]) == ("2026-02-01", "2026-02-28", False)
    job = api.call("GET", f"{JOBS}/{made['job_id']}").json
    assert (job["schedule_id"], job["requested_by"]) == (schedule["id"], f"schedule:{schedule['id']}")
    assert (job["job_type"], job["farm_id"], job["format"]) == ("FEED_INTAKE_EXPORT", "farm-1", "csv")
    runs = api.call("GET", f"{SCHEDULES}/{schedule['id']}").json["last_runs"]
    assert runs == [
        {
            "job_id": job["id"],
            "scheduled_time": "2026-03-01T05:00:00.000Z",
            "start_date": "2026-02-01",
            "end_date": "2026-02-28",
            "status": "queued",
        }
    ]


@pytest.mark.parametrize("same_parameters", [True, False])
def test_a_client_cannot_take_a_schedules_period_with_its_idempotency_key(api, aws, same_parameters):
    # The key of a firing can be worked out (the schedule id, the period, a hash of public parameters): a
    # client creating a job under it first would make the firing fail, or adopt the client's job, for good.
    schedule = create(api)
    export = schedule["export"]
    parameters = {name: export[name] for name in ("job_type", "format", "farm_id")}
    taken = {
        **parameters,
        "format": export["format"] if same_parameters else "json",
        "start_date": "2026-02-01",
        "end_date": "2026-02-28",
    }
    for key in (f"schedule:{schedule['id']}:2026-02-01:2026-02-28:0123456789ab", "schedule:x"):
        refused = api.create_job({**taken, "idempotency_key": key}, roles="[farm_manager]")

        assert (refused.status, refused.error_code) == (400, "VALIDATION_ERROR"), refused.body
        assert "reserved for scheduled exports" in refused.json["error"]["message"]

    made = fire("tenant-a", schedule["id"])

    assert made["replayed"] is False
    job = api.call("GET", f"{JOBS}/{made['job_id']}").json
    assert (job["schedule_id"], job["requested_by"]) == (schedule["id"], f"schedule:{schedule['id']}")


def test_a_refired_schedule_makes_no_second_job_and_one_run_while_the_next_period_makes_both(api, aws):
    schedule = create(api)

    first = fire("tenant-a", schedule["id"], "2026-03-01T05:00:00Z")
    again = fire("tenant-a", schedule["id"], "2026-03-01T05:02:00Z")
    april = fire("tenant-a", schedule["id"], "2026-04-01T04:00:00Z")

    assert (again["job_id"], again["replayed"]) == (first["job_id"], True)
    assert april["job_id"] != first["job_id"]
    runs = api.call("GET", f"{SCHEDULES}/{schedule['id']}").json["last_runs"]
    assert [run["job_id"] for run in runs] == [april["job_id"], first["job_id"]]
    assert len(aws.job_items("tenant-a")) == 2


def test_the_definition_is_read_when_it_fires_so_a_changed_schedule_exports_what_it_now_says(api, aws):
    schedule = create(api)
    changed = valid_schedule(export={"job_type": "KPI_FEEDING_EXPORT", "period": "previous_day"})
    assert api.call("PUT", f"{SCHEDULES}/{schedule['id']}", body={**changed, "expected_version": 1}).status == 200

    made = fire("tenant-a", schedule["id"], "2026-03-01T05:00:00Z")

    job = api.call("GET", f"{JOBS}/{made['job_id']}").json
    assert (job["job_type"], job["start_date"], job["end_date"]) == ("KPI_FEEDING_EXPORT", "2026-02-28", "2026-02-28")


@pytest.mark.parametrize("state", ["disabled", "deleted", "deleting", "another tenant's"])
def test_a_firing_of_a_schedule_that_is_not_active_for_that_tenant_makes_nothing(api, aws, state):
    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"
    tenant = "tenant-a"
    if state == "disabled":
        assert api.call("PUT", path, body={**valid_schedule(enabled=False), "expected_version": 1}).status == 200
    elif state == "deleted":
        assert api.call("DELETE", path).status == 204
    elif state == "deleting":
        stored = schedule_repository().get("tenant-a", schedule["id"], consistent=True)
        leave_half_applied(replace(stored, deleting=True), minutes_ago=0)
    else:
        tenant = "tenant-b"

    made = fire(tenant, schedule["id"])

    assert made["job_id"] is None
    assert aws.job_items("tenant-a") == [] and aws.job_items("tenant-b") == []


@pytest.mark.parametrize(
    "event",
    [
        {"tenant_id": "tenant-a", "schedule_id": "x"},
        {"tenant_id": "tenant-a", "schedule_id": "x", "scheduled_time": "2026-03-01T05:00:00"},
        {"tenant_id": "tenant#a", "schedule_id": "x", "scheduled_time": "2026-03-01T05:00:00Z"},
        {"tenant_id": "tenant-a", "schedule_id": "x", "scheduled_time": "2026-03-01T05:00:00Z", "job_type": "X"},
    ],
)
def test_a_firing_that_is_neither_kind_raises_and_writes_nothing(api, aws, event):
    from scheduled_export.handler import lambda_handler

    with pytest.raises(ValidationError):
        lambda_handler(event, LambdaContextStub())
    assert aws.job_items("tenant-a") == []


def test_the_sweeper_completes_an_update_left_half_applied(api, aws):
    schedule = create(api)
    stored = schedule_repository().get("tenant-a", schedule["id"], consistent=True)
    leave_half_applied(stored, expression="rate(2 hours)", enabled=False)

    report = sweeper().sweep()

    assert report.schedules_repaired == 1
    held = scheduler_schedule("tenant-a", schedule["id"])
    assert (held["ScheduleExpression"], held["State"]) == ("rate(2 hours)", "DISABLED")
    settled = schedule_repository().get("tenant-a", schedule["id"], consistent=True)
    assert (settled.pending_since, settled.version) == (None, 2)
    assert sweeper().sweep().schedules_repaired == 0


def test_the_sweeper_creates_the_scheduler_schedule_of_a_create_left_half_applied(api, aws):
    schedule = create(api)
    stored = schedule_repository().get("tenant-a", schedule["id"], consistent=True)
    boto3.client("scheduler").delete_schedule(GroupName=GROUP, Name=schedule_name("tenant-a", schedule["id"]))
    leave_half_applied(stored)

    assert sweeper().sweep().schedules_repaired == 1
    assert scheduler_schedule("tenant-a", schedule["id"])["ScheduleExpression"] == "cron(0 6 1 * ? *)"


def test_the_sweeper_finishes_a_delete_left_half_applied(api, aws):
    schedule = create(api)
    stored = schedule_repository().get("tenant-a", schedule["id"], consistent=True)
    leave_half_applied(replace(stored, deleting=True))

    assert api.call("GET", f"{SCHEDULES}/{schedule['id']}").status == 404
    assert sweeper().sweep().schedules_repaired == 1
    assert scheduler_schedule("tenant-a", schedule["id"]) is None
    assert schedule_items(aws) == []
    assert schedule_repository().count("tenant-a") == 0


def test_the_sweeper_leaves_a_change_that_may_still_be_in_progress(api, aws):
    schedule = create(api)
    stored = schedule_repository().get("tenant-a", schedule["id"], consistent=True)
    leave_half_applied(stored, minutes_ago=0, expression="rate(2 hours)")

    assert sweeper().sweep().schedules_repaired == 0
    assert scheduler_schedule("tenant-a", schedule["id"])["ScheduleExpression"] == "cron(0 6 1 * ? *)"


def test_two_sweepers_at_once_complete_a_change_once_and_agree(api, serialized_aws):
    schedule = create(api)
    stored = schedule_repository().get("tenant-a", schedule["id"], consistent=True)
    leave_half_applied(stored, expression="rate(3 hours)")

    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: sweeper().sweep(), range(2)))

    assert all(report.skipped == [] for report in reports)
    settled = schedule_repository().get("tenant-a", schedule["id"], consistent=True)
    assert settled.pending_since is None
    assert scheduler_schedule("tenant-a", schedule["id"])["ScheduleExpression"] == "rate(3 hours)"


def test_a_schedule_changed_after_its_period_fired_makes_the_new_definitions_job_on_its_next_firing(api, aws):
    schedule = create(api)
    first = fire("tenant-a", schedule["id"], "2026-03-01T05:00:00Z")
    changed = valid_schedule(export={"job_type": "FEED_INTAKE_EXPORT", "format": "json", "period": "previous_month"})
    assert api.call("PUT", f"{SCHEDULES}/{schedule['id']}", body={**changed, "expected_version": 1}).status == 200

    again = fire("tenant-a", schedule["id"], "2026-03-01T05:05:00Z")

    assert again["job_id"] != first["job_id"] and not again["replayed"]
    assert (again["start_date"], again["end_date"]) == ("2026-02-01", "2026-02-28")
    runs = api.call("GET", f"{SCHEDULES}/{schedule['id']}").json["last_runs"]
    assert [run["job_id"] for run in runs] == [again["job_id"], first["job_id"]]


def test_last_runs_are_the_ten_latest_periods_newest_first_whatever_order_they_fired_in(api, aws):
    import random

    schedule = create(api, export={"job_type": "FEED_INTAKE_EXPORT", "period": "previous_day"})
    days = [f"2026-11-{day:02d}T05:00:00Z" for day in range(2, 17)]
    random.Random(7).shuffle(days)

    for day in days:
        fire("tenant-a", schedule["id"], day)

    runs = api.call("GET", f"{SCHEDULES}/{schedule['id']}").json["last_runs"]
    assert [run["start_date"] for run in runs] == [f"2026-11-{day:02d}" for day in range(15, 5, -1)]
