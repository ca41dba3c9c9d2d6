"""State machines from their ASL files, with ${Name} placeholders filled the way SAM's
DefinitionSubstitutions fills them, created in moto (which then executes them)."""

from __future__ import annotations

import re
import time
from typing import Any

from local.template import ACCOUNT_ID

PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
DEFAULT_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/report-result"


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def render_definition(text: str, substitutions: dict[str, str]) -> str:
    """The definition with every placeholder substituted; an unfilled placeholder is an error, not a deploy surprise."""
    missing = placeholders(text) - set(substitutions)
    if missing:
        raise ValueError(f"no substitution for {sorted(missing)}")
    rendered = PLACEHOLDER.sub(lambda match: substitutions[match.group(1)], text)
    left = PLACEHOLDER.findall(rendered)
    if left:  # a substituted value that itself looks like a placeholder
        raise ValueError(f"placeholders left after substitution: {sorted(set(left))}")
    return rendered


def create_state_machine(
    sfn_client: Any,
    *,
    name: str,
    definition: str,
    machine_type: str = "STANDARD",
    role_arn: str = DEFAULT_ROLE_ARN,
) -> str:
    response = sfn_client.create_state_machine(name=name, definition=definition, roleArn=role_arn, type=machine_type)
    return response["stateMachineArn"]


def wait_for_execution(sfn_client: Any, execution_arn: str, timeout_s: float = 30) -> dict[str, Any]:
    """describe_execution once the execution has left RUNNING; TimeoutError if it does not in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        execution = sfn_client.describe_execution(executionArn=execution_arn)
        if execution["status"] != "RUNNING":
            return execution
        if time.monotonic() >= deadline:
            raise TimeoutError(f"execution {execution_arn} still RUNNING after {timeout_s} s")
        time.sleep(0.05)
