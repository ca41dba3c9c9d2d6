"""The report-result state machine in tests: statemachine/report_result.asl.json itself, rendered and
created in moto by the local stack's code (local.state_machine), plus checks of what it needs from
template.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from local import state_machine
from local.state_machine import wait_for_execution
from local.template import load_template

__all__ = [
    "DEFINITION_PATH",
    "create_report_state_machine",
    "definition_placeholders",
    "render_definition",
    "required_iam_actions",
    "task_resources",
    "template_substitution_names",
    "wait_for_execution",
]

DEFINITION_PATH = Path(__file__).resolve().parents[2] / "statemachine" / "report_result.asl.json"
STATE_MACHINE_LOGICAL_ID = "ReportResultStateMachine"
STATE_MACHINE_NAME = "report-result"


def definition_placeholders() -> set[str]:
    return state_machine.placeholders(DEFINITION_PATH.read_text(encoding="utf-8"))


def template_substitution_names() -> set[str] | None:
    """The DefinitionSubstitutions names template.yaml gives the state machine; None while it has none."""
    resource = load_template().get("Resources", {}).get(STATE_MACHINE_LOGICAL_ID)
    if resource is None:
        return None
    return set(resource.get("Properties", {}).get("DefinitionSubstitutions", {}))


def task_resources() -> list[str]:
    """The Resource of every Task state in the definition."""
    definition = json.loads(DEFINITION_PATH.read_text(encoding="utf-8"))
    return [state["Resource"] for state in definition["States"].values() if state["Type"] == "Task"]


# IAM has no action for a DynamoDB transaction: each item is authorised as the single-item call it
# stands for (Update -> UpdateItem, Put -> PutItem, Delete -> DeleteItem, ConditionCheck ->
# ConditionCheckItem). The definition cannot say which item types its input holds; the generator
# builds every transaction it hands over (store, rollback, mark notified) under the attempt guard,
# which gives Update and Put items only (a ConditionCheck item is only built for a job that has
# already ended, and applied directly, never by this machine). A new item type in those
# transactions must be added here and to the template's policy.
_TRANSACTION_ITEM_ACTIONS = {"dynamodb:TransactWriteItems": {"dynamodb:UpdateItem", "dynamodb:PutItem"}}


def required_iam_actions() -> set[str]:
    """The IAM action each integration calls: arn:aws:states:::dynamodb:getItem -> dynamodb:GetItem,
    arn:aws:states:::aws-sdk:s3:deleteObject -> s3:DeleteObject; a transaction -> its items' actions."""
    actions = set()
    for resource in task_resources():
        parts = resource.removeprefix("arn:aws:states:::").split(":")
        if parts[0] == "aws-sdk":
            parts = parts[1:]
        service, api_action = parts[0], parts[1].split(".")[0]
        action = f"{service}:{api_action[0].upper()}{api_action[1:]}"
        actions.update(_TRANSACTION_ITEM_ACTIONS.get(action, {action}))
    return actions


def render_definition(substitutions: dict[str, str]) -> str:
    return state_machine.render_definition(DEFINITION_PATH.read_text(encoding="utf-8"), substitutions)


def create_report_state_machine(
    sfn_client: Any,
    *,
    substitutions: dict[str, str],
    role_arn: str = "arn:aws:iam::123456789012:role/report-result",
) -> str:
    """Create the state machine from the real ASL file and return its ARN.

    When template.yaml declares the state machine, its DefinitionSubstitutions must name exactly
    the placeholders the ASL file uses, so a renamed substitution fails here rather than in a deploy.
    """
    template_names = template_substitution_names()
    if template_names is not None and template_names != definition_placeholders():
        raise ValueError(
            f"{STATE_MACHINE_LOGICAL_ID} DefinitionSubstitutions {sorted(template_names)} "
            f"do not match the placeholders in {DEFINITION_PATH.name} {sorted(definition_placeholders())}"
        )
    return state_machine.create_state_machine(
        sfn_client, name=STATE_MACHINE_NAME, definition=render_definition(substitutions), role_arn=role_arn
    )


# The states every announced outcome passes through, from input check to success.
ANNOUNCED_PATH = [
    "Check Outcome",
    "Store Outcome",
    "Publish Event",
    "Notify Subscribers",
    "Mark Notified",
    "Check Completion",
    "Finish Job",
]


def state_names(sfn: Any, execution_arn: str) -> list[str]:
    """The states an execution entered, in order."""
    history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
    return [event["stateEnteredEventDetails"]["name"] for event in history if "stateEnteredEventDetails" in event]
