"""Firing schedules on demand: the template's Schedule and ScheduleV2 events, delivered as EventBridge
Scheduler would deliver them, to the function's real handler in its own process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .running_stack import REPO_ROOT, RunningStack, start_stack, stop_stack

SCHEDULES_TEMPLATE = Path(__file__).parent / "schedules" / "template.yaml"
NO_SCHEDULES_TEMPLATE = Path(__file__).parent / "schedules" / "without-schedules.yaml"


@pytest.fixture(scope="module")
def scheduled_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("scheduled"), "--template", str(SCHEDULES_TEMPLATE))
    yield running
    assert stop_stack(running) == 0, running.log_tail()


def test_the_schedules_of_the_template_are_listed(scheduled_stack):
    items = requests.get(f"{scheduled_stack.api}/_local/schedules", timeout=10).json()["items"]

    assert {item["name"]: (item["type"], item["expression"], item["enabled"]) for item in items} == {
        "MonthlyFunction.FirstOfTheMonth": ("ScheduleV2", "cron(0 2 1 * ? *)", True),
        "MonthlyFunction.Hourly": ("ScheduleV2", "rate(1 hour)", False),
    }


def test_firing_a_schedule_delivers_its_input_with_the_scheduled_time(scheduled_stack):
    fired = requests.post(
        f"{scheduled_stack.api}/_local/schedules/MonthlyFunction.FirstOfTheMonth",
        params={"time": "2025-03-01T02:00:00Z"},
        timeout=30,
    )

    assert fired.status_code == 200, fired.text
    assert fired.json()["response"] == {
        "event": {"kind": "monthly", "scheduled_time": "2025-03-01T02:00:00Z"},
        "greeting": "hello from the template",
        "function_name": "report-export-local-MonthlyFunction",
    }


def test_a_schedule_without_input_delivers_the_scheduler_default_event(scheduled_stack):
    fired = requests.post(f"{scheduled_stack.api}/_local/schedules/Hourly", timeout=30)

    event = fired.json()["response"]["event"]
    assert event["source"] == "aws.scheduler"
    assert event["detail-type"] == "Scheduled Event"
    assert event["resources"] == [
        "arn:aws:scheduler:eu-west-1:123456789012:schedule/default/report-export-local-MonthlyFunction-Hourly"
    ]


def test_an_unknown_schedule_is_404(scheduled_stack):
    assert requests.post(f"{scheduled_stack.api}/_local/schedules/Nope", timeout=10).status_code == 404


def test_the_command_lists_schedules_and_says_when_there_are_none():
    def listing(*args: str) -> str:
        # No stack answers on port 9: the listing comes from the template alone.
        command = [sys.executable, "-m", "local", "schedule", "--api", "http://127.0.0.1:9", *args]
        return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60).stdout

    assert listing() == (
        "SweeperFunction.EveryFewMinutes  ScheduleV2  rate(5 minutes)\n"
        "ScheduledExportFunction.MonthlyFeedIntakeExample  ScheduleV2  cron(0 2 1 * ? *) (disabled)\n"
        "(the template's schedules; start the stack with ./dev run to see the tenants' too)\n"
    )
    assert listing("--template", str(NO_SCHEDULES_TEMPLATE)) == (
        f"{NO_SCHEDULES_TEMPLATE.name} has no schedules (no Schedule or ScheduleV2 events on its functions).\n"
        "(the template's schedules; start the stack with ./dev run to see the tenants' too)\n"
    )
    assert "MonthlyFunction.FirstOfTheMonth  ScheduleV2  cron(0 2 1 * ? *)" in listing(
        "--template", str(SCHEDULES_TEMPLATE)
    )
