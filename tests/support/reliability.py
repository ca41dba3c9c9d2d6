"""The reliability table: tests marked `reliability(scenario=..., injected=..., checked=...)` are its rows.

Under pytest, `record` (a plugin registered in tests/conftest.py) notes each marked test's outcome and
what it measured (the `measured` fixture) in RELIABILITY_DIR, one file per process. Run as a program
(`./dev reliability` does both), it turns those notes into docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
_HEADER = """# Reliability

What the service was put through, and what it did. Each row is a test of the suite (it runs in CI
with the rest); this page is written by `./dev reliability`, which runs just these tests and
replaces the page with what they measured this time. Do not edit it by hand.

| Scenario | What was injected | What was checked | Result |
|---|---|---|---|
"""


class Recorder:
    """The pytest plugin: one line of JSON per marked test, when RELIABILITY_DIR is set."""

    def __init__(self, directory: str) -> None:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self._path = Path(directory) / f"rows-{worker}.jsonl"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
        outcome = yield
        report = outcome.get_result()
        marker = item.get_closest_marker("reliability")
        if marker is None or report.when != "call":
            return
        row = {
            **marker.kwargs,
            "test": item.nodeid,
            "passed": report.passed,
            "seconds": round(report.duration, 1),
            "measured": getattr(item, "measured", {}),
        }
        with self._path.open("a", encoding="utf-8") as notes:
            notes.write(json.dumps(row) + "\n")


def write_document(directory: Path) -> int:
    files = sorted(directory.glob("rows-*.jsonl"))
    notes = [json.loads(line) for path in files for line in path.read_text(encoding="utf-8").splitlines()]
    # A parametrized test is one scenario run over many cases: one row, with how many held.
    rows: dict[str, dict[str, Any]] = {}
    for note in sorted(notes, key=lambda note: note["test"]):
        row = rows.setdefault(note["scenario"], {**note, "cases": 0, "held": 0, "seconds": 0.0, "measured": {}})
        row["cases"] += 1
        row["held"] += 1 if note["passed"] else 0
        row["seconds"] = round(row["seconds"] + note["seconds"], 1)
        row["measured"].update(note["measured"])
    lines = [_HEADER]
    for row in rows.values():
        figures = "; ".join(f"{name} {value}" for name, value in row["measured"].items())
        held = row["held"] == row["cases"]
        result = "held" if held else "**FAILED**"
        if row["cases"] > 1:
            result += f" in {row['held']} of {row['cases']} cases"
        result += f": {figures}" if figures else ""
        lines.append(f"| {row['scenario']} | {row['injected']} | {row['checked']} | {result} ({row['seconds']} s) |\n")
    lines.append(f"\n{len(rows)} scenarios, {len(notes)} cases, written {time.strftime('%Y-%m-%d', time.gmtime())}.\n")
    DOCUMENT.write_text("".join(lines), encoding="utf-8")
    failed = [name for name, row in rows.items() if row["held"] != row["cases"]]
    print(f"{DOCUMENT.name}: {len(rows)} scenarios, {len(failed)} with failures")
    return 1 if failed or not rows else 0


if __name__ == "__main__":
    sys.exit(write_document(Path(sys.argv[1])))
