"""The local stack (./dev run) as a separate process on free ports, and what a client of it needs:
tokens from its development issuer, the upstream's knobs, polling a job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from local.tokens import DEFAULT_TTL_SEC, TokenSettings, load_or_create_key, mint

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SEC = 90  # generous: CI runs this next to the rest of the suite on two cores
JOBS = "/api/v1/reports/jobs"


@dataclass
class RunningStack:
    api: str
    aws: str
    upstream: str
    issuer: str
    audience: str
    key_file: Path
    log_file: Path
    process: subprocess.Popen[bytes]

    def token(self, tenant: str = "tenant-a", *roles: str, ttl_sec: int = DEFAULT_TTL_SEC, **overrides: Any) -> str:
        """A token from the development issuer the stack trusts (what ./dev token prints)."""
        settings = TokenSettings(overrides.pop("issuer", self.issuer), (overrides.pop("audience", self.audience),))
        key = overrides.pop("key", None) or load_or_create_key(self.key_file)
        return mint(key, settings, tenant=tenant, roles=list(roles or ["tenant_admin"]), ttl_sec=ttl_sec, **overrides)

    def headers(self, tenant: str = "tenant-a", *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, *roles)}"}

    def knobs(self, **changes: Any) -> None:
        """Set the sample upstream's knobs (DELETE /_knobs puts them back)."""
        response = requests.put(f"{self.upstream}/_knobs", json=changes, timeout=5)
        assert response.status_code == 200, response.text

    def reset_knobs(self) -> None:
        requests.delete(f"{self.upstream}/_knobs", timeout=5).raise_for_status()

    def aws_client(self, service: str) -> Any:
        """A boto3 client of the stack's emulated AWS (moto server takes any credentials)."""
        return boto3.client(
            service,
            endpoint_url=self.aws,
            region_name="eu-west-1",
            aws_access_key_id="local",
            aws_secret_access_key="local-secret",
        )

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def start_stack(workdir: Path, *args: str) -> RunningStack:
    ready_file, log_file, key_file = workdir / "ready.json", workdir / "stack.log", workdir / "dev-jwt-key.pem"
    # The stack gives each function only the template's environment; its own process gets a clean
    # one too, so nothing the unit tests' conftest set leaks in.
    environment = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "POWERTOOLS_"))}
    command = [
        sys.executable,
        "-m",
        "local",
        "run",
        "--port",
        "0",
        "--aws-port",
        "0",
        "--upstream-port",
        "0",
        "--ready-file",
        str(ready_file),
        "--key-file",
        str(key_file),
        *args,
    ]
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_SEC
    while not ready_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local stack did not start:\n{log_file.read_text(errors='replace')[-5000:]}")
        time.sleep(0.1)
    ready = json.loads(ready_file.read_text())
    return RunningStack(
        api=ready["api"],
        aws=ready["aws"],
        upstream=ready["upstream"],
        issuer=ready["issuer"],
        audience=ready["audience"],
        key_file=key_file,
        log_file=log_file,
        process=process,
    )


def stop_stack(stack: RunningStack) -> int:
    """Ctrl-C, and the exit status once everything stopped."""
    stack.process.send_signal(signal.SIGINT)
    try:
        # Generous: on a loaded 2-core CI machine the stack has been seen to need more than 30 s to exit
        # after it printed "Stopped." (its last state-machine executions finishing, most likely).
        return stack.process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        raise


def wait_for_job(stack: RunningStack, job_id: str, statuses: set[str], timeout_s: float = 60) -> dict[str, Any]:
    """Poll GET /jobs/{id}, as a client would, until the job reaches one of the statuses."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = requests.get(f"{stack.api}{JOBS}/{job_id}", headers=stack.headers(), timeout=10).json()
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} is still {job['status']}:\n{stack.log_tail()}")
        time.sleep(0.2)
