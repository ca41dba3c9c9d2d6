"""What a cold start loads: the API function never imports the generation pipeline (its upstream client,
writers, report definitions or row comparison), so adding to the pipeline never slows the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import sys\n"
    "import {module}\n"
    "print('\\n'.join(sorted(name for name in sys.modules if name.startswith('report_export'))))\n"
)


def loaded_by(module: str) -> list[str]:
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            str(REPO_ROOT / part) for part in ("layers/shared", "functions/api", "functions/generator")
        ),
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout.split()


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
