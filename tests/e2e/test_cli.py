"""The `reports` command line end to end: the installed executable, run as an operator runs it, against
the local stack over real HTTP. Only its exit status, stdout, stderr and the files it writes are read."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from .running_stack import RunningStack

REPORTS = Path(sys.executable).parent / "reports"
TIMEOUT_SEC = 120  # per command: generous for a loaded 2-core machine; a passing run takes a few seconds
PERIOD = ["--from", "2025-01-01", "--to", "2025-01-31"]


def environment(stack: RunningStack, tmp_path: Path, *roles: str, tenant: str = "cli-tenant", **extra: str):
    env = {name: value for name, value in os.environ.items() if not name.startswith("REPORTS_")}
    env.update(
        {
            "REPORTS_API_URL": stack.api,
            "REPORTS_TOKEN": stack.token(tenant, *(roles or ("tenant_admin",))),
            # No operator's own config file may leak in.
            "REPORTS_CONFIG": str(tmp_path / "no-config.toml"),
            "COLUMNS": "160",
        }
    )
    env.update(extra)
    return {name: value for name, value in env.items() if value}


def reports(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPORTS), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_SEC, check=False
    )


def reports_json(env: dict[str, str], *args: str, cwd: Path | None = None) -> Any:
    done = reports(env, *args, "--output", "json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def env(stack: RunningStack, tmp_path: Path) -> dict[str, str]:
    return environment(stack, tmp_path)


def test_create_wait_downloads_the_file_and_verifies_it(stack, env, tmp_path):
    done = reports(
        env,
        "create",
        "--type",
        "FEED_INTAKE_EXPORT",
        "--farm",
        "farm-12",
        *PERIOD,
        "--filter",
        "min_kg=1",
        "--wait",
        "--interval",
        "0.3",
        "-o",
        str(tmp_path),
        "--output",
        "json",
    )

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    job, download = document["job"], document["download"]
    assert job["status"] == "succeeded" and job["filters"] == {"min_kg": 1}
    saved = Path(download["path"])
    assert saved == tmp_path / job["file_name"]
    assert sha256_of(saved) == job["sha256"] == download["sha256"]
    assert saved.stat().st_size == job["size_bytes"]
    assert saved.read_bytes().startswith(b"id,recorded_at,farm_id")
    # The idempotency key was printed, and the job carries it: a retry with it answers this very job.
    key = job["idempotency_key"]
    assert key in done.stderr and str(uuid.UUID(key)) == key
    again = reports(
        env,
        "create",
        "--type",
        "FEED_INTAKE_EXPORT",
        "--farm",
        "farm-12",
        *PERIOD,
        "--filter",
        "min_kg=1",
        "--idempotency-key",
        key,
        "-O",
        "json",
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["id"] == job["id"]
    assert "the key was used before" in again.stderr

    # show, list and history agree, each as one JSON document
    assert reports_json(env, "show", job["id"])["sha256"] == job["sha256"]
    listed = reports_json(env, "list", "--status", "succeeded", "--type", "FEED_INTAKE_EXPORT", "--all")
    assert job["id"] in [item["id"] for item in listed["items"]] and listed["next_cursor"] is None
    history = reports_json(env, "history", job["id"])
    assert [event["event"] for event in history["items"]][:2] == ["created", "download_url_issued"]
    assert history["chain"]["intact"] is True


def test_list_pages_with_limit_and_cursor(stack, tmp_path):
    env = environment(stack, tmp_path, tenant=f"cli-pages-{uuid.uuid4().hex[:8]}")
    made = [reports_json(env, "create", "--type", "TELEMETRY_EXPORT", *PERIOD)["id"] for _ in range(3)]

    first = reports_json(env, "list", "--limit", "2")
    second = reports_json(env, "list", "--limit", "2", "--cursor", first["next_cursor"])
    everything = reports_json(env, "list", "--limit", "1", "--all")

    assert [item["id"] for item in first["items"] + second["items"]] == made[::-1]
    assert second["next_cursor"] is None
    assert [item["id"] for item in everything["items"]] == made[::-1]
    table = reports(env, "list", "--limit", "2")
    assert table.returncode == 0 and made[2] in table.stdout and "more: --cursor" in table.stderr


def tampered_download(stack: RunningStack, env: dict[str, str], tmp_path: Path, tamper) -> subprocess.CompletedProcess:
    job = reports_json(env, "create", "--type", "FEED_INTAKE_EXPORT", "--farm", "farm-7", *PERIOD)
    job = _wait(env, job["id"])
    s3 = stack.aws_client("s3")
    bucket = next(bucket["Name"] for bucket in s3.list_buckets()["Buckets"] if "report" in bucket["Name"])
    original = s3.get_object(Bucket=bucket, Key=job["file_path"])["Body"].read()
    s3.put_object(Bucket=bucket, Key=job["file_path"], Body=tamper(original))
    return reports(env, "download", job["id"], "-o", str(tmp_path / "report.csv"))


def _wait(env: dict[str, str], job_id: str, timeout_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = reports_json(env, "show", job_id)
        if job["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
            assert job["status"] == "succeeded", job
            return job
        time.sleep(0.3)


@pytest.mark.parametrize(
    "tamper",
    [lambda data: data[:-2] + bytes([data[-2] ^ 1]) + data[-1:], lambda data: data + b"one more row\n"],
    ids=["same-size", "longer"],
)
def test_a_tampered_file_is_detected_and_no_file_is_left(stack, env, tmp_path, tamper):
    done = tampered_download(stack, env, tmp_path, tamper)

    assert done.returncode == 4, done.stderr
    assert "not the report the service recorded" in done.stderr
    assert list(tmp_path.glob("report.csv*")) == [] and list(tmp_path.glob(".report.csv*")) == []
    assert "Traceback" not in done.stderr


def test_an_error_from_the_service_prints_code_message_and_trace_id(stack, env, tmp_path):
    missing = "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f"

    done = reports(env, "show", missing)
    as_json = reports(env, "show", missing, "--output", "json")
    refused = reports(environment(stack, tmp_path, "viewer"), "create", "--type", "TELEMETRY_EXPORT")
    invalid = reports(env, "create", "--type", "TELEMETRY_EXPORT", "--from", "2025-02-01", "--to", "2025-01-01")

    assert done.returncode == 1
    assert re.search(r"NOT_FOUND \(HTTP 404\): .+", done.stderr), done.stderr
    assert re.search(r"traceId: [A-Za-z0-9=+/-]{6,}", done.stderr), done.stderr
    error = json.loads(as_json.stdout)["error"]
    assert (as_json.returncode, error["code"], error["status"]) == (1, "NOT_FOUND", 404) and error["traceId"]
    assert refused.returncode == 1 and "FORBIDDEN (HTTP 403)" in refused.stderr
    assert invalid.returncode == 1 and "VALIDATION_ERROR (HTTP 400)" in invalid.stderr
    assert "end_date" in invalid.stderr
    for result in (done, as_json, refused, invalid):
        assert "Traceback" not in result.stderr


def test_without_a_token_the_error_says_how_to_get_one(stack, tmp_path):
    env = environment(stack, tmp_path, REPORTS_TOKEN="")
    env.pop("REPORTS_TOKEN", None)

    done = reports(env, "list")
    forged = reports(environment(stack, tmp_path, REPORTS_TOKEN="not-a-jwt"), "list")

    assert done.returncode == 2
    assert "no token: give --token, set REPORTS_TOKEN" in done.stderr
    assert "./dev token" in done.stderr and "Traceback" not in done.stderr
    assert forged.returncode == 1
    assert "UNAUTHORIZED (HTTP 401): Unauthorized" in forged.stderr and "Traceback" not in forged.stderr
    # The gateway's own answer carries its request id, which the client shows as the traceId to quote.
    assert "traceId: (none given)" not in forged.stderr and "traceId:" in forged.stderr


def test_a_profile_with_a_token_command_is_used(stack, tmp_path):
    token = stack.token("cli-tenant", "viewer")
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.local]\napi_url = "{stack.api}"\ntoken_command = "echo {token}"\n')
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("REPORTS_")},
        "REPORTS_CONFIG": str(config),
    }

    done = reports(env, "--profile", "local", "list", "-O", "json")

    assert done.returncode == 0, done.stderr
    assert "items" in json.loads(done.stdout)


def test_report_types_are_listed_and_described(env):
    listed = reports_json(env, "types")
    one = reports_json(env, "types", "feed_intake_export")
    table = reports(env, "types", "FEED_INTAKE_EXPORT")

    assert "FEED_INTAKE_EXPORT" in [item["job_type"] for item in listed["items"]]
    assert one["job_type"] == "FEED_INTAKE_EXPORT" and one["columns"][0]["name"] == "id"
    assert table.returncode == 0 and "columns" in table.stdout and "recorded_at" in table.stdout
    unknown = reports(env, "types", "NO_SUCH_TYPE")
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr


def test_reexport_wait_shows_the_lineage_and_the_row_comparison(stack, knobs, env, tmp_path):
    original = reports_json(env, "create", "--type", "FEED_INTAKE_EXPORT", "--farm", "farm-3", *PERIOD)
    original = _wait(env, original["id"])

    same = reports(
        env,
        "reexport",
        original["id"],
        "--reason",
        "auditor asked",
        "--wait",
        "--interval",
        "0.3",
        "-o",
        str(tmp_path / "same.csv"),
        "-O",
        "json",
    )
    assert same.returncode == 0, same.stderr
    document = json.loads(same.stdout)
    assert document["reexport"]["matches_original"] is True
    assert document["reexport"]["reason"] == "auditor asked"
    assert sha256_of(tmp_path / "same.csv") == original["sha256"] == document["download"]["sha256"]

    knobs.knobs(data_version=2)  # the upstream's data changed since: the new file differs
    differs = reports(
        env,
        "reexport",
        original["id"],
        "--reason",
        "again",
        "--wait",
        "--interval",
        "0.3",
        "-o",
        str(tmp_path / "new.csv"),
    )
    assert differs.returncode == 0, differs.stderr
    assert "no: the new file differs from the original" in differs.stdout
    assert "row comparison" in differs.stdout and "changed" in differs.stdout
    assert original["id"] in differs.stdout
    assert sha256_of(tmp_path / "new.csv") != original["sha256"]
    history = reports_json(env, "history", original["id"])
    assert [event["event"] for event in history["items"]].count("reexport_completed") == 2
    listed = reports_json(env, "reexports", "list", "--report", original["id"])
    assert len(listed["items"]) == 2


def test_schedules_are_managed_and_fired_on_the_local_stack(stack, tmp_path):
    env = environment(stack, tmp_path, tenant=f"cli-sched-{uuid.uuid4().hex[:8]}")
    created = reports_json(
        env,
        "schedules",
        "create",
        "--expression",
        "cron(0 6 ? * MON *)",
        "--time-zone",
        "Europe/Oslo",
        "--type",
        "TELEMETRY_EXPORT",
        "--period",
        "previous_week",
        "--description",
        "weekly telemetry",
    )
    schedule_id = created["id"]

    assert created["next_firing_at"] and created["export"]["period"] == "previous_week"
    assert [item["id"] for item in reports_json(env, "schedules", "list")["items"]] == [schedule_id]
    updated = reports_json(env, "schedules", "update", schedule_id, "--format", "json", "--description", "weekly")
    assert (updated["version"], updated["export"]["format"], updated["description"]) == (2, "json", "weekly")
    assert updated["expression"] == "cron(0 6 ? * MON *)" and updated["time_zone"] == "Europe/Oslo"

    fired = reports(
        env,
        "schedules",
        "fire",
        schedule_id,
        "--time",
        "2026-03-02T05:00:00Z",
        "--wait",
        "--interval",
        "0.3",
        "-o",
        str(tmp_path),
        "-O",
        "json",
    )
    assert fired.returncode == 0, fired.stderr
    document = json.loads(fired.stdout)
    assert document["job"]["schedule_id"] == schedule_id
    assert (document["job"]["start_date"], document["job"]["end_date"]) == ("2026-02-23", "2026-03-01")
    assert sha256_of(Path(document["download"]["path"])) == document["job"]["sha256"]
    shown = reports_json(env, "schedules", "show", schedule_id)
    assert shown["last_runs"][0]["job_id"] == document["job"]["id"]

    assert reports_json(env, "schedules", "delete", schedule_id) == {"id": schedule_id, "deleted": True}
    gone = reports(env, "schedules", "show", schedule_id)
    assert gone.returncode == 1 and "NOT_FOUND" in gone.stderr


# In a pseudo-terminal, as an operator sees it


def run_in_terminal(env: dict[str, str], *args: str, answer: bytes | None = None, interrupt_on: bytes | None = None):
    """Run reports with a pseudo-terminal as stdin, stdout and stderr; what the terminal showed and the exit
    status. interrupt_on: send SIGINT (Ctrl-C) once this appears, then type `answer`."""
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 150, 0, 0))
    terminal_env = {**env, "TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8"}
    terminal_env.pop("COLUMNS", None)
    process = subprocess.Popen(
        [str(REPORTS), *args], stdin=secondary, stdout=secondary, stderr=secondary, env=terminal_env
    )
    os.close(secondary)
    shown, interrupted, answered = b"", False, False
    deadline = time.monotonic() + TIMEOUT_SEC
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError as error:  # EIO: every writer has closed the terminal
                    if error.errno != errno.EIO:
                        raise
                    chunk = b""
                if not chunk:
                    break
                shown += chunk
            if interrupt_on and not interrupted and interrupt_on in shown:
                process.send_signal(signal.SIGINT)
                interrupted = True
            if interrupted and not answered and b"[y/N]" in shown:
                os.write(primary, answer or b"\n")
                answered = True
            if process.poll() is not None and not ready:
                break
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(primary)
    return status, shown.decode("utf-8", errors="replace")


def test_the_progress_bar_is_seen_in_a_terminal(stack, knobs, env, tmp_path):
    knobs.knobs(rows=400, page_size_cap=40, delay_sec=0.4)  # ten pages: about four seconds

    status, shown = run_in_terminal(
        env,
        "create",
        "--type",
        "FEED_INTAKE_EXPORT",
        "--farm",
        "farm-9",
        *PERIOD,
        "--wait",
        "--interval",
        "0.3",
        "-o",
        str(tmp_path / "slow.csv"),
    )

    assert status == 0, shown
    assert "━" in shown, shown  # the bar itself
    percentages = {int(value) for value in re.findall(r"(\d{1,3})%", shown)}
    assert 0 in percentages and 100 in percentages, shown
    assert any(0 < value < 100 for value in percentages), shown  # seen moving, not only start and end
    assert re.search(r"[\d,]+ rows", shown)
    assert "verified" in shown
    assert (tmp_path / "slow.csv").stat().st_size > 0


def test_ctrl_c_while_waiting_asks_and_cancels_the_job(stack, knobs, env, tmp_path):
    knobs.knobs(rows=2000, page_size_cap=20, delay_sec=0.5)  # far longer than the test waits

    status, shown = run_in_terminal(
        env,
        "create",
        "--type",
        "FEED_INTAKE_EXPORT",
        "--farm",
        "farm-5",
        *PERIOD,
        "--wait",
        "--interval",
        "0.3",
        answer=b"y\n",
        interrupt_on=b"running",
    )

    assert status == 130, shown
    job_id = re.search(r"Cancel job ([0-9a-f-]{36})\? \[y/N\]", shown).group(1)
    assert "Traceback" not in shown
    job = _wait_status(env, job_id, {"cancelled"})
    assert job["status"] == "cancelled"


def test_ctrl_c_answered_no_leaves_the_job_running(stack, knobs, env, tmp_path):
    knobs.knobs(rows=2000, page_size_cap=20, delay_sec=0.5)

    status, shown = run_in_terminal(
        env,
        "create",
        "--type",
        "FEED_INTAKE_EXPORT",
        "--farm",
        "farm-6",
        *PERIOD,
        "--wait",
        "--interval",
        "0.3",
        answer=b"n\n",
        interrupt_on=b"running",
    )

    assert status == 130, shown
    job_id = re.search(r"Cancel job ([0-9a-f-]{36})\?", shown).group(1)
    assert "keeps running" in shown
    assert reports_json(env, "show", job_id)["status"] in ("queued", "running")
    cancelled = reports_json(env, "cancel", job_id)
    assert cancelled["cancel_requested"] is True or cancelled["status"] == "cancelled"
    assert _wait_status(env, job_id, {"cancelled"})["status"] == "cancelled"


def _wait_status(env: dict[str, str], job_id: str, statuses: set[str], timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = reports_json(env, "show", job_id)
        if job["status"] in statuses or time.monotonic() > deadline:
            return job
        time.sleep(0.3)
