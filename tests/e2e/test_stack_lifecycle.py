"""The local stack as a process manager sees it: it says how much it holds, and SIGTERM (what timeout,
CI and process managers send) stops it within seconds, as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import time

import requests

from .running_stack import RunningStack, start_stack


def test_the_stack_says_how_much_memory_it_holds(stack: RunningStack):
    status = requests.get(f"{stack.api}/_local/status", timeout=10).json()

    assert status["rss_mb"] > 0 and status["peak_rss_mb"] >= status["rss_mb"] * 0.5
    assert "moto" in status["note"]


def test_sigterm_stops_the_stack_within_seconds(tmp_path):
    running = start_stack(tmp_path)
    assert requests.get(f"{running.api}/api/health", timeout=10).status_code == 200
    functions = requests.get(f"{running.api}/_local/status", timeout=10).json()["functions"]
    sandboxes = [pid for processes in functions.values() for pids in processes.values() for pid in pids]

    asked = time.monotonic()
    running.process.send_signal(signal.SIGTERM)
    status = running.process.wait(timeout=30)
    stopped_in = time.monotonic() - asked

    assert status == 0, running.log_tail()
    assert "Stopped." in running.log_tail(5)
    assert stopped_in < 15, stopped_in
    # Nothing left behind: every function's sandbox process ended with the stack.
    assert sandboxes and [pid for pid in sandboxes if process_exists(pid)] == []


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
