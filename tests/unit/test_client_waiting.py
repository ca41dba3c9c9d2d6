"""Following a job: polled until it ends, shown as one line per change without a terminal, a missed poll
tolerated, and Ctrl-C answered by the person at the terminal (cancel on y only)."""

from __future__ import annotations

import io
from typing import Any, cast

import pytest

from report_client.api import Api
from report_client.errors import ApiError, Interrupted, Unreachable
from report_client.output import Output
from report_client.waiting import follow


class Jobs:
    """The API's answers to GET /jobs/{id}, one per poll (an exception is raised instead of answered)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.polls = 0

    def job(self, job_id: str) -> dict[str, Any]:
        self.polls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return {"id": job_id, **answer}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def as_api(jobs: Jobs) -> Api:
    return cast(Api, jobs)


def output() -> tuple[Output, io.StringIO]:
    errors = io.StringIO()
    return Output("table", stdout=io.StringIO(), stderr=errors), errors


def test_the_job_is_polled_until_it_ends_and_each_change_is_a_line():
    jobs = Jobs(
        {"status": "queued"},
        {"status": "running", "progress_pct": 40, "rows_written": 400},
        {"status": "running", "progress_pct": 40, "rows_written": 400},
        {"status": "succeeded", "progress_pct": 100, "rows_written": 1000},
    )
    out, errors = output()

    job = follow(as_api(jobs), out, "job-1", interval=0.001, cancel=lambda: "unused")

    assert job["status"] == "succeeded" and jobs.polls == 4
    assert errors.getvalue().splitlines() == [
        "job job-1: queued 0% 0 rows",
        "job job-1: running 40% 400 rows",
        "job job-1: succeeded 100% 1000 rows",
    ]


def test_a_missed_poll_is_tried_again_but_a_refusal_is_not():
    unreachable = Unreachable("connection reset")
    jobs = Jobs(unreachable, ApiError(503, "SERVICE_UNAVAILABLE", "busy", "t"), {"status": "failed"})
    out, errors = output()

    assert follow(as_api(jobs), out, "j", interval=0.001, cancel=lambda: "")["status"] == "failed"
    assert "trying again" in errors.getvalue()

    with pytest.raises(ApiError, match="gone"):
        follow(as_api(Jobs(ApiError(404, "NOT_FOUND", "gone", "t"))), out, "j", interval=0.001, cancel=lambda: "")


@pytest.mark.parametrize(("answer", "cancelled"), [("y\n", True), ("yes\n", True), ("n\n", False), ("\n", False)])
def test_ctrl_c_asks_and_cancels_only_on_yes(monkeypatch, answer, cancelled):
    monkeypatch.setattr("sys.stdin", Terminal(answer))
    calls: list[str] = []
    out, errors = output()

    with pytest.raises(Interrupted) as interrupted:
        follow(
            as_api(Jobs({"status": "running"}, KeyboardInterrupt())),
            out,
            "job-7",
            interval=0.001,
            cancel=lambda: calls.append("cancel") or "job job-7 cancelled",
        )

    assert "Cancel job job-7? [y/N]" in errors.getvalue()
    assert calls == (["cancel"] if cancelled else [])
    assert interrupted.value.exit_code == 130
    assert ("asked to cancel" if cancelled else "keeps running") in interrupted.value.message


def test_without_a_terminal_to_ask_on_nothing_is_cancelled(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    calls: list[str] = []
    out, errors = output()

    with pytest.raises(Interrupted, match="keeps running"):
        follow(as_api(Jobs(KeyboardInterrupt())), out, "j", interval=0.001, cancel=lambda: calls.append("x") or "")

    assert calls == [] and "no terminal to ask on" in errors.getvalue()


def test_a_cancel_that_is_refused_is_reported_and_the_command_still_ends_interrupted(monkeypatch):
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    out, errors = output()

    def refused() -> str:
        raise ApiError(409, "JOB_NOT_CANCELLABLE", "The job has already succeeded", "t")

    with pytest.raises(Interrupted):
        follow(as_api(Jobs(KeyboardInterrupt())), out, "j", interval=0.001, cancel=refused)

    assert "not cancelled: The job has already succeeded" in errors.getvalue()
