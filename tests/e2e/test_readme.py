"""The README's walkthrough, run as written: its shell blocks, with curl, against a running local stack.

Only what the README itself leaves to the reader's machine is substituted: $API (the stack's port)
and $TOKEN (made with the README's own `./dev token` arguments, signed by this stack's key).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from local.parameters import DEFAULT_PORTS

from .running_stack import REPO_ROOT, RunningStack

README = REPO_ROOT / "README.md"
TOKEN_COMMAND = re.compile(r"export TOKEN=\$\(\./dev token (?P<args>[^)]*)\)")


def walkthrough_blocks() -> list[str]:
    """The ```sh blocks of "### Walkthrough", unindented (the steps sit in a numbered list)."""
    section = README.read_text(encoding="utf-8").split("\n### Walkthrough\n", 1)[1].split("\n#", 1)[0]
    blocks = []
    for indent, body in re.findall(r"^( *)```sh\n(.*?)^\1```", section, flags=re.S | re.M):
        blocks.append("\n".join(line.removeprefix(indent) for line in body.splitlines()))
    return blocks


def test_the_walkthrough_runs_as_written(stack: RunningStack, tmp_path: Path):
    setup, *steps = walkthrough_blocks()
    api_line, token_line = setup.splitlines()
    assert api_line == f"export API=http://127.0.0.1:{DEFAULT_PORTS['api']}"
    token_command = TOKEN_COMMAND.fullmatch(token_line)
    assert token_command, token_line
    assert len(steps) == 3, "create, poll, download and check"

    token = subprocess.run(
        [sys.executable, "-m", "local", "token", *token_command["args"].split(), "--key-file", str(stack.key_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + "\n".join(steps)],
        cwd=tmp_path,
        env={**environment, "API": stack.api, "TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{stack.log_tail()}"
    output = result.stdout.splitlines()
    assert re.fullmatch(r"[0-9a-f-]{36}", output[0]), "step 1 echoes the job id"
    assert output[-2:] == ["succeeded", "report.csv: OK"]
    assert (tmp_path / "report.csv").read_text().startswith("id,recorded_at,farm_id")
