"""The service's own OpenAPI document, turned against it through the local gateway: generated requests
for every operation, with tokens for several roles, and every answer checked against the document (no
server error, a documented status code, content type and body)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from .running_stack import RunningStack

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = ["tenant_admin", "viewer", "internal_service"]


def served_document() -> dict:
    """The document /api-docs/openapi.json serves, made by the API function's code in a process of its
    own (this one never imports the handlers), so the test cases exist before the stack does."""
    script = "import json; from api.handler import app; from api.rest import openapi_document; "
    script += "print(json.dumps(openapi_document(app)))"
    path = os.pathsep.join([str(REPO_ROOT / "layers" / "shared"), str(REPO_ROOT / "functions" / "api")])
    environment = {
        **os.environ,
        "PYTHONPATH": path,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    return json.loads(
        subprocess.run(
            [sys.executable, "-c", script], env=environment, capture_output=True, check=True, text=True, timeout=120
        ).stdout
    )


schema = schemathesis.openapi.from_dict(served_document())


_TOKENS: dict[tuple[str, str], str] = {}


def bearer(stack: RunningStack, role: str) -> dict[str, str]:
    """One token per role for the whole run: minting one for every generated request would be most of it."""
    key = (stack.api, role)
    if key not in _TOKENS:
        _TOKENS[key] = stack.token("tenant-a", role)
    return {"Authorization": f"Bearer {_TOKENS[key]}"}


@pytest.mark.reliability(
    scenario="Requests generated from the OpenAPI document",
    injected="schemathesis: 6 examples an operation, each with a tenant_admin, viewer and internal_service token",
    checked="no server error; every status code, content type and body as documented",
)
@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_answers_as_its_document_says(case, stack: RunningStack):
    for role in ROLES:
        headers = bearer(stack, role)
        # A download answers with a redirect to S3, which is not this API's to describe.
        case.call_and_validate(base_url=stack.api, headers=headers, checks=CHECKS, allow_redirects=False)


def test_the_document_tested_is_the_one_served(stack: RunningStack):
    import requests

    assert requests.get(f"{stack.api}/api-docs/openapi.json", timeout=30).json() == served_document()
