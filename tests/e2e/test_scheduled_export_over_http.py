"""A scheduled export end to end on the local stack: fire the template's schedule, the job it makes runs,
its file downloads; fired again for the same period, it makes no second job."""

from __future__ import annotations

import requests

from .running_stack import RunningStack, wait_for_job

SCHEDULE = "ScheduledExportFunction.MonthlyFeedIntakeExample"


def test_a_fired_schedule_makes_one_job_for_its_period_and_the_file_downloads(stack: RunningStack):
    fire = f"{stack.api}/_local/schedules/{SCHEDULE}"

    first = requests.post(fire, params={"time": "2026-03-01T01:00:00Z"}, timeout=60)
    again = requests.post(fire, params={"time": "2026-03-01T01:03:00Z"}, timeout=60)

    assert first.status_code == 200, first.text
    made, replayed = first.json()["response"], again.json()["response"]
    assert (made["start_date"], made["end_date"], made["replayed"]) == ("2026-02-01", "2026-02-28", False)
    assert (replayed["job_id"], replayed["replayed"]) == (made["job_id"], True)
    job = wait_for_job(stack, made["job_id"], {"succeeded"})
    assert (job["schedule_id"], job["requested_by"]) == ("monthly-feed-intake", "schedule:monthly-feed-intake")
    link = requests.get(f"{stack.api}/api/v1/reports/jobs/{job['id']}/download", headers=stack.headers(), timeout=30)
    body = requests.get(link.json()["download_url"], timeout=30)
    assert body.status_code == 200 and body.content.startswith(b"id,recorded_at,farm_id")


def test_a_tenant_schedule_created_over_http_fires_on_demand_and_its_file_downloads(stack: RunningStack):
    schedules = f"{stack.api}/api/v1/reports/schedules"
    definition = {
        "description": "last week's feed intake",
        "expression": "cron(0 6 ? * MON *)",
        "time_zone": "Europe/Oslo",
        "export": {"job_type": "FEED_INTAKE_EXPORT", "format": "csv", "period": "previous_week"},
    }
    created = requests.post(schedules, json=definition, headers=stack.headers(), timeout=30)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["next_firing_at"] is not None

    listed = requests.get(f"{stack.api}/_local/schedules", timeout=10).json()["items"]
    assert [item["name"] for item in listed if item["name"].endswith(schedule["id"])]
    fired = requests.post(
        f"{stack.api}/_local/schedules/{schedule['id']}", params={"time": "2026-03-02T05:00:00Z"}, timeout=60
    )

    assert fired.status_code == 200, fired.text
    made = fired.json()["response"]
    assert (made["start_date"], made["end_date"]) == ("2026-02-23", "2026-03-01")
    job = wait_for_job(stack, made["job_id"], {"succeeded"})
    assert (job["schedule_id"], job["requested_by"]) == (schedule["id"], f"schedule:{schedule['id']}")
    link = requests.get(f"{stack.api}/api/v1/reports/jobs/{job['id']}/download", headers=stack.headers(), timeout=30)
    assert requests.get(link.json()["download_url"], timeout=30).status_code == 200
    runs = requests.get(f"{schedules}/{schedule['id']}", headers=stack.headers(), timeout=30).json()["last_runs"]
    assert [(run["job_id"], run["status"]) for run in runs] == [(job["id"], "succeeded")]
    firings = requests.get(f"{stack.api}/_local/schedules", timeout=10).json()["firings"]
    assert firings[-1]["schedule"].endswith(schedule["id"]) and firings[-1]["response"]["job_id"] == job["id"]
