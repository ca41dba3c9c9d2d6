"""What a cold start loads: the API function never imports the generation pipeline (its upstream client,
writers, report definitions or row comparison), so adding to the pipeline never slows the API; and no
function loads what its first request does not need: the X-Ray SDK while tracing is off, the OpenAPI
document's models outside /api-docs, Powertools' parser models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def loaded_by(module: str) -> list[str]:
    return heavy_modules_loaded_by(module, "report_export")


def test_the_api_handler_loads_nothing_of_the_generation_pipeline():
    loaded = loaded_by("api.handler")

    assert "report_export.jobs.ending" in loaded  # the probe sees the package at all
    assert [name for name in loaded if name.startswith("report_export.generation")] == []
    assert "report_export.reexports.comparison" not in loaded


def test_the_generator_handler_loads_no_http_edge():
    loaded = loaded_by("generator.handler")

    assert "report_export.generation.generator" in loaded
    assert [
        name
        for name in loaded
        if name.startswith(("report_export.reexports.requests", "report_export.reexports.results"))
    ] == []


PROBE = (
    "import sys\n"
    "import {module}\n"
    "print('\\n'.join(sorted(name for name in sys.modules if name.startswith({prefixes!r}))))\n"
)
LAMBDA_LIKE = {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}


def heavy_modules_loaded_by(module: str, *prefixes: str, **environment: str) -> list[str]:
    paths = ("layers/shared", "functions/api", "functions/generator", "functions/sweeper", "functions/scheduled_export")
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module, prefixes=prefixes)],
        env={
            **os.environ,
            **environment,
            "PYTHONPATH": os.pathsep.join(str(REPO_ROOT / part) for part in paths),
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.split()


def test_no_handler_loads_the_xray_sdk_when_tracing_is_off():
    for module in ("api.handler", "generator.handler", "sweeper.handler", "scheduled_export.handler"):
        assert heavy_modules_loaded_by(module, "aws_xray_sdk", **LAMBDA_LIKE) == [], module


def test_with_tracing_on_the_handlers_use_powertools_tracer():
    loaded = heavy_modules_loaded_by(
        "generator.handler", "aws_xray_sdk.core", LAMBDA_TASK_ROOT="/var/task", POWERTOOLS_TRACE_DISABLED="false"
    )
    assert "aws_xray_sdk.core" in loaded


def test_the_api_loads_the_openapi_document_machinery_only_for_api_docs():
    loaded = heavy_modules_loaded_by(
        "api.handler",
        "aws_lambda_powertools.event_handler.openapi.models",
        "aws_lambda_powertools.event_handler.openapi.swagger_ui",
        **LAMBDA_LIKE,
    )
    assert loaded == []


def test_the_generator_does_not_load_powertools_parser_models():
    loaded = heavy_modules_loaded_by("generator.handler", "aws_lambda_powertools.utilities.parser", **LAMBDA_LIKE)
    assert loaded == []
