"""Following a job to its end: a live progress bar on a terminal (plain lines otherwise), fed by the job's
progress_pct, rows_written and status as the API reports them; Ctrl-C offers to cancel it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn

from report_client.api import Api
from report_client.errors import ApiError, CliError, Interrupted, Unreachable
from report_client.output import Output

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
# A loaded service, or a gateway restarting, may miss a poll or two; a run of failures this long is an outage.
MAX_POLL_FAILURES = 5


class Display(Protocol):
    def show(self, job: dict[str, Any]) -> None: ...


class BarDisplay:
    """A rich progress bar, on stderr so stdout keeps only the result."""

    def __init__(self, progress: Progress, label: str) -> None:
        self._progress = progress
        self._task = progress.add_task(label, total=100, rows="0", status="queued")

    def show(self, job: dict[str, Any]) -> None:
        status = str(job.get("status"))
        percent = 100 if status == "succeeded" else int(job.get("progress_pct") or 0)
        phase = job.get("phase")
        shown = f"{status} ({phase})" if phase and status == "running" else status
        rows = job.get("rows_written") or 0
        self._progress.update(self._task, completed=percent, rows=f"{rows:,}", status=shown)


class LineDisplay:
    """Without a terminal (a CI log, a pipe) a bar would only be noise: one line per change instead."""

    def __init__(self, out: Output, label: str) -> None:
        self._out = out
        self._label = label
        self._last: tuple[Any, ...] | None = None

    def show(self, job: dict[str, Any]) -> None:
        state = (job.get("status"), job.get("progress_pct"), job.get("rows_written"))
        if state != self._last:
            self._last = state
            self._out.note(f"{self._label}: {state[0]} {state[1] or 0}% {state[2] or 0} rows")


def new_progress(out: Output) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=out.err,
        transient=False,
    )


def follow(
    api: Api,
    out: Output,
    job_id: str,
    *,
    interval: float,
    cancel: Callable[[], str],
    label: str | None = None,
) -> dict[str, Any]:
    """Poll the job until it ends and return it. Ctrl-C asks whether to cancel (calling `cancel`, which
    says what it did) and then ends the command with Interrupted, cancelled or not."""
    label = label or f"job {job_id[:8]}"
    try:
        if out.err.is_terminal:
            with new_progress(out) as progress:
                return _poll(api, out, job_id, interval, BarDisplay(progress, label))
        return _poll(api, out, job_id, interval, LineDisplay(out, label))
    except KeyboardInterrupt:
        pass
    if _confirm(out, f"Cancel job {job_id}? [y/N] "):
        try:
            out.note(cancel())
        except CliError as error:
            # Finished in the meantime, most likely (409): say so, and still end as interrupted.
            out.note(f"not cancelled: {error.message}")
        else:
            raise Interrupted(f"interrupted; job {job_id} was asked to cancel")
    raise Interrupted(f"interrupted; job {job_id} keeps running", hint=f"follow it with: reports show {job_id}")


def _poll(api: Api, out: Output, job_id: str, interval: float, display: Display) -> dict[str, Any]:
    failures = 0
    while True:
        try:
            job = api.job(job_id)
            failures = 0
        except (Unreachable, ApiError) as error:
            if isinstance(error, ApiError) and error.status < 500:
                raise
            failures += 1
            if failures >= MAX_POLL_FAILURES:
                raise
            out.note(f"poll failed ({error.message}); trying again")
            time.sleep(interval * failures)
            continue
        display.show(job)
        if job.get("status") in TERMINAL_STATUSES:
            return job
        time.sleep(interval)


def _confirm(out: Output, question: str) -> bool:
    # Only a person can answer: with no terminal on stdin nothing is cancelled behind the caller's back.
    if not sys.stdin or not sys.stdin.isatty():
        out.note("not cancelled: no terminal to ask on")
        return False
    try:
        out.err.print(question, end="")
        answer = sys.stdin.readline()
    except (KeyboardInterrupt, EOFError):
        out.err.print()
        return False
    return answer.strip().lower() in ("y", "yes")
