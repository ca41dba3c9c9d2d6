"""Schedules, fired on demand: the template's (Schedule and ScheduleV2 events of its functions) and
those the running service created in EventBridge Scheduler (the tenants' schedules, through the API).

Nothing fires them on their cron locally: a developer fires one when they want to see it run,
and the function receives the event EventBridge (Schedule) or EventBridge Scheduler
(ScheduleV2) would have sent at that moment.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local.template import ACCOUNT_ID, Template

SCHEDULE_EVENT_TYPES = ("Schedule", "ScheduleV2")


@dataclass(frozen=True)
class Schedule:
    function: str  # logical id
    event: str  # the event's name under Events
    kind: str  # Schedule (EventBridge rule) or ScheduleV2 (EventBridge Scheduler)
    expression: str
    input: str | None  # the target input as the template gives it; None for the default event
    enabled: bool
    name: str

    @property
    def key(self) -> str:
        return f"{self.function}.{self.event}"

    def arn(self, region: str) -> str:
        if self.kind == "ScheduleV2":
            return f"arn:aws:scheduler:{region}:{ACCOUNT_ID}:schedule/default/{self.name}"
        return f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{self.name}"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.key,
            "type": self.kind,
            "expression": self.expression,
            "enabled": self.enabled,
            "input": self.input,
        }


def schedules_of(template: Template) -> list[Schedule]:
    found = []
    for logical_id in template.resources_of_type("AWS::Serverless::Function"):
        for event_name, event in template.function_properties(logical_id).get("Events", {}).items():
            if event.get("Type") not in SCHEDULE_EVENT_TYPES:
                continue
            props = template.resolve(event.get("Properties", {}))
            kind = str(event["Type"])
            expression = props.get("ScheduleExpression" if kind == "ScheduleV2" else "Schedule", "")
            state = str(props.get("State", "ENABLED")).upper()
            enabled = state == "ENABLED" and str(props.get("Enabled", True)).lower() != "false"
            raw_input = props.get("Input")
            found.append(
                Schedule(
                    function=logical_id,
                    event=event_name,
                    kind=kind,
                    expression=str(expression),
                    input=None if raw_input is None else str(raw_input),
                    enabled=enabled,
                    name=str(props.get("Name") or f"{template.stack_name}-{logical_id}-{event_name}"),
                )
            )
    return found


def schedule_event(schedule: Schedule, *, at: datetime, region: str) -> Any:
    """What the target receives when the schedule fires at `at`."""
    execution_id = str(uuid.uuid4())
    time_text = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if schedule.input is not None:
        if schedule.kind == "ScheduleV2":
            return scheduler_input(schedule.input, arn=schedule.arn(region), at=at)
        return json.loads(schedule.input)
    return {
        "version": "0",
        "id": execution_id,
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler" if schedule.kind == "ScheduleV2" else "aws.events",
        "account": ACCOUNT_ID,
        "time": time_text,
        "region": region,
        "resources": [schedule.arn(region)],
        # Scheduler's default notification carries the detail as a JSON string; a rule's as an object.
        "detail": "{}" if schedule.kind == "ScheduleV2" else {},
    }


def scheduler_input(text: str, *, arn: str, at: datetime) -> Any:
    """A Scheduler target's input as its target receives it: the context attributes filled in."""
    for name, value in {
        "<aws.scheduler.schedule-arn>": arn,
        "<aws.scheduler.scheduled-time>": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.attempt-number>": "1",
    }.items():
        text = text.replace(name, value)
    return json.loads(text)


@dataclass(frozen=True)
class SchedulerSchedule:
    """A schedule the running service created in (emulated) EventBridge Scheduler."""

    group: str
    name: str
    arn: str
    expression: str
    enabled: bool
    target_arn: str
    input: str

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": "EventBridge Scheduler",
            "group": self.group,
            "expression": self.expression,
            "enabled": self.enabled,
            "input": self.input,
        }


def scheduler_schedules(scheduler: Any, *, exclude: set[str]) -> list[SchedulerSchedule]:
    """The schedules in Scheduler's groups other than the template's own, as they are now."""
    found = []
    for page in scheduler.get_paginator("list_schedules").paginate():
        for summary in page["Schedules"]:
            if summary["Name"] in exclude:
                continue
            detail = scheduler.get_schedule(GroupName=summary["GroupName"], Name=summary["Name"])
            found.append(
                SchedulerSchedule(
                    group=detail["GroupName"],
                    name=detail["Name"],
                    arn=detail["Arn"],
                    expression=detail["ScheduleExpression"],
                    enabled=detail.get("State", "ENABLED") == "ENABLED",
                    target_arn=detail["Target"]["Arn"],
                    input=detail["Target"].get("Input", "{}"),
                )
            )
    return found


def register_schedules(template: Template, schedules: list[Schedule], scheduler: Any, events: Any) -> None:
    """Create the schedules in moto too (EventBridge Scheduler schedules, EventBridge rules), so they can be listed."""
    for schedule in schedules:
        target_arn = template.physical.attributes[(schedule.function, "Arn")]
        target: dict[str, Any] = {"Arn": target_arn, "RoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/local-scheduler"}
        if schedule.input is not None:
            target["Input"] = schedule.input
        if schedule.kind == "ScheduleV2":
            scheduler.create_schedule(
                Name=schedule.name,
                ScheduleExpression=schedule.expression,
                FlexibleTimeWindow={"Mode": "OFF"},
                Target=target,
                State="ENABLED" if schedule.enabled else "DISABLED",
            )
        else:
            events.put_rule(
                Name=schedule.name,
                ScheduleExpression=schedule.expression,
                State="ENABLED" if schedule.enabled else "DISABLED",
            )
            rule_target: dict[str, Any] = {"Id": schedule.function, "Arn": target_arn}
            if schedule.input is not None:
                rule_target["Input"] = schedule.input
            events.put_targets(Rule=schedule.name, Targets=[rule_target])
