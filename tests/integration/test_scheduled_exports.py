"""Scheduled exports against the emulated account: a firing becomes one job for its period, through the
same code as the API; a re-fired schedule makes none; bad input writes nothing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from conftest import LambdaContextStub

JOBS = "/api/v1/reports/jobs"
EXPORT = {
    "schedule_id": "weekly-kpi",
    "tenant_id": "tenant-a",
    "job_type": "KPI_FEEDING_EXPORT",
    "format": "csv",
    "farm_id": "farm-1",
    "period": "previous_week",
    "time_zone": "Europe/Oslo",
    "scheduled_time": "2025-01-06T05:00:00Z",
}


def fire(event):
    from scheduled_export.handler import lambda_handler

    return lambda_handler(event, LambdaContextStub())


def test_a_firing_makes_a_job_for_the_concrete_period_that_links_back_to_its_schedule(api, aws):
    made = fire(EXPORT)

    assert (made["start_date"], made["end_date"], made["replayed"]) == ("2024-12-30", "2025-01-05", False)
    job = api.call("GET", f"{JOBS}/{made['job_id']}").json
    assert (job["schedule_id"], job["requested_by"], job["status"]) == ("weekly-kpi", "schedule:weekly-kpi", "queued")
    assert (job["job_type"], job["farm_id"]) == ("KPI_FEEDING_EXPORT", "farm-1")
    assert job["idempotency_key"].startswith("schedule:weekly-kpi:2024-12-30:2025-01-05:")
    assert aws.queued_messages() == [{"tenant_id": "tenant-a", "job_id": made["job_id"]}]
    history = api.call("GET", f"{JOBS}/{made['job_id']}/history").json["items"]
    assert [(entry["event"], entry["actor"]) for entry in history] == [("created", "schedule:weekly-kpi")]


def test_a_refired_schedule_makes_no_second_job_and_the_next_period_does(api, aws):
    first = fire(EXPORT)
    retried = fire({**EXPORT, "scheduled_time": "2025-01-06T05:02:00Z"})
    next_week = fire({**EXPORT, "scheduled_time": "2025-01-13T05:00:00Z"})

    assert (retried["job_id"], retried["replayed"]) == (first["job_id"], True)
    assert next_week["job_id"] != first["job_id"] and next_week["start_date"] == "2025-01-06"
    assert len(api.call("GET", JOBS).json["items"]) == 2


def test_a_schedule_changed_within_its_period_makes_the_job_of_its_new_definition_once(api, aws):
    first = fire(EXPORT)

    changed = fire({**EXPORT, "format": "json"})
    changed_again = fire({**EXPORT, "format": "json", "scheduled_time": "2025-01-06T05:03:00Z"})

    assert changed["job_id"] != first["job_id"] and not changed["replayed"]
    assert (changed_again["job_id"], changed_again["replayed"]) == (changed["job_id"], True)
    jobs = {job["id"]: job["format"] for job in api.call("GET", JOBS).json["items"]}
    assert jobs == {first["job_id"]: "csv", changed["job_id"]: "json"}


@pytest.mark.parametrize(
    "change",
    [
        {"time_zone": "Mars/Olympus"},
        {"scheduled_time": "2025-01-06T05:00:00"},  # no zone
        {"period": "previous_fortnight"},
        {"tenant_id": "tenant#b"},
        {"job_type": "NOT_A_REPORT"},
        {"surprise": 1},
    ],
)
def test_input_that_is_not_a_scheduled_export_raises_and_writes_nothing(api, aws, change):
    with pytest.raises(ValidationError):
        fire({**EXPORT, **change})

    assert api.call("GET", JOBS).json["items"] == []
    assert aws.queued_messages() == []
