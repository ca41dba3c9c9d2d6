"""Records, while the tests run, every AWS call each function and the state machine makes, as the
IAM authorisations it needs (support.iam_requests), and holds them against each one's role from
the transformed template (support.least_privilege).

moto does not enforce IAM, so a call a role does not allow passes every test and fails in AWS with
AccessDenied. This plugin makes that a failed run instead: at the end of the session every recorded
call must be allowed by the role of whoever made it. When the whole suite ran, every action a role
grants must also have been used, or be listed in GRANTED_UNUSED with the reason it is kept.

Who made a call: the service creates its clients once per cold start through deadline.guard, so the
plugin hooks exactly those clients; the function is the outermost frame of its handler package (or,
for a test that calls a domain entry point directly, that entry point's module); a thread inherits
the caller of the thread that started it (part uploads, copies). The state machine's calls are the
ones moto's Step Functions interpreter makes.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore import handlers

from report_export.aws.deadline import InvocationDeadline

from support.iam_requests import Authorisation, UnknownOperation, authorisations
from support.least_privilege import STATE_MACHINE, Role, template_roles

REPO = str(Path(__file__).resolve().parents[2]) + "/"
_MOTO_STEP_FUNCTIONS = "/moto/stepfunctions/"

# The handler packages, by the template's CodeUri, and the domain entry points tests also call directly.
_FUNCTION_DIRS = {
    "functions/api/": "ApiFunction",
    "functions/generator/": "GeneratorFunction",
    "functions/sweeper/": "SweeperFunction",
    "functions/scheduled_export/": "ScheduledExportFunction",
}
_ENTRY_MODULES = {
    "layers/shared/report_export/sweeping/sweeper.py": "SweeperFunction",
    "layers/shared/report_export/generation/generator.py": "GeneratorFunction",
    "layers/shared/report_export/schedules/exports.py": "ScheduledExportFunction",
}

# Granted and never called by any test, each for a reason. A grant that is neither used nor here
# fails a whole-suite run: it is either dead (remove it) or its use is untested (test it).
GRANTED_UNUSED: dict[tuple[str, str], str] = {
    # SAM's SSMParameterReadPolicy grants these with GetParameter; the service reads one parameter by name.
    **{
        (owner, action): "part of SAM's SSMParameterReadPolicy; only ssm:GetParameter is called"
        for owner in ("ApiFunction", "GeneratorFunction", "SweeperFunction")
        for action in ("ssm:DescribeParameters", "ssm:GetParameters", "ssm:GetParametersByPath")
    },
    # SAM's SQSPollerPolicy: the sweeper receives and deletes dead letters one at a time.
    **{
        ("SweeperFunction", action): "part of SAM's SQSPollerPolicy; the sweeper receives and deletes singly"
        for action in (
            "sqs:ChangeMessageVisibility",
            "sqs:ChangeMessageVisibilityBatch",
            "sqs:DeleteMessageBatch",
            "sqs:GetQueueAttributes",
        )
    },
    # No call names it: S3 consults it when the object asked for is missing, and answers 404 rather than 403.
    # (The generator needs it for that too, and lists a job's checkpoints with it, so its grant is used.)
    ("ApiFunction", "s3:ListBucket"): "S3 answers a missing object 404 instead of 403 only with it",
    ("ApiFunction", "s3:AbortMultipartUpload"): (
        "a file over the copy threshold is copied in parts; a failed copy aborts them (no test file is that big)"
    ),
    ("ScheduledExportFunction", "dynamodb:BatchGetItem"): (
        "the create path shared with the API: a full set of active jobs is checked against its jobs "
        "(tested through the API, test_active_jobs_limit.py)"
    ),
    ("ScheduledExportFunction", "sqs:SendMessage"): (
        "SAM's DeadLetterQueuePolicy: Lambda itself sends a firing that failed every retry to the dead-letter queue"
    ),
}

_records: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], str] = {}
_unknown: dict[str, str] = {}
_lock = threading.Lock()
_current_test = ""
_recording = True
_listeners: list[list[tuple[str, Authorisation]]] = []


def _caller(frame: Any) -> str | None:
    """The function whose code made the call on this thread, or None for a call the tests made."""
    found, found_from_handler = None, False
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(REPO):
            relative = path[len(REPO) :]
            for directory, function in _FUNCTION_DIRS.items():
                if relative.startswith(directory):
                    found, found_from_handler = function, True
            if not found_from_handler and relative in _ENTRY_MODULES:
                found = _ENTRY_MODULES[relative]
        frame = frame.f_back
    return found or getattr(threading.current_thread(), "_aws_caller", None)


def _state_machine_is_calling(frame: Any) -> bool:
    while frame is not None:
        if _MOTO_STEP_FUNCTIONS in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _record(caller: str, model: Any, params: dict[str, Any]) -> None:
    if not _recording:
        return
    service, operation = model.service_model.signing_name, model.name
    try:
        needed = authorisations(service, operation, params)
    except UnknownOperation as error:
        with _lock:
            _unknown.setdefault(f"{caller}: {error}", _current_test)
        return
    with _lock:
        for request in needed:
            _records.setdefault((caller, request.action, request.resource, request.context), _current_test)
            for listener in _listeners:
                listener.append((caller, request))


def _service_call(params: dict[str, Any], model: Any, **_: Any) -> None:
    caller = _caller(sys._getframe(1))
    if caller is not None:
        _record(caller, model, params)


def _any_call(params: dict[str, Any], model: Any, **_: Any) -> None:
    # moto runs each execution, and each of its states, on threads of its own (marked when started).
    if getattr(threading.current_thread(), "_aws_caller", None) == STATE_MACHINE:
        _record(STATE_MACHINE, model, params)


def install() -> None:
    """Hook the service's clients, moto's state machine clients and thread starts (once per process)."""
    if getattr(install, "done", False):
        return
    install.done = True
    guard = InvocationDeadline.guard

    def guard_and_record(self: InvocationDeadline, client: Any) -> Any:
        client.meta.events.register("before-parameter-build", _service_call)
        return guard(self, client)

    InvocationDeadline.guard = guard_and_record
    # Sessions created from now on (moto starts a new default session per mock) see every client's calls.
    handlers.BUILTIN_HANDLERS.append(("before-parameter-build", _any_call))

    start = threading.Thread.start

    def start_inheriting_caller(thread: threading.Thread) -> None:
        frame = sys._getframe(1)
        thread._aws_caller = STATE_MACHINE if _state_machine_is_calling(frame) else _caller(frame)
        start(thread)

    threading.Thread.start = start_inheriting_caller


@contextmanager
def recorded_calls() -> Iterator[list[tuple[str, Authorisation]]]:
    """The (caller, authorisation) pairs recorded while the block runs."""
    calls: list[tuple[str, Authorisation]] = []
    with _lock:
        _listeners.append(calls)
    try:
        yield calls
    finally:
        with _lock:
            _listeners.remove(calls)


def refused(calls: list[tuple[str, Authorisation]], roles: dict[str, Role]) -> list[str]:
    """A line for each call the caller's role does not allow."""
    return sorted(
        {
            f"{caller} may not {request.action} on {request.resource}"
            for caller, request in calls
            if not roles[caller].allows(request)
        }
    )


def unused_grants(calls: list[tuple[str, Authorisation]], roles: dict[str, Role]) -> list[str]:
    """A line for each granted action no call used and GRANTED_UNUSED does not explain."""
    lines = set()
    for owner, role in roles.items():
        made = [request for caller, request in calls if caller == owner]
        for statement in role.statements:
            for action in statement.actions:
                alone = dataclasses.replace(statement, actions=(action,))
                used = any(alone.allows(request) for request in made)
                if not used and (owner, action) not in GRANTED_UNUSED:
                    lines.add(f"{owner} is granted {action} ({statement.policy}) and no test used it")
                elif used and (owner, action) in GRANTED_UNUSED:
                    lines.add(f"{owner} uses {action}: its GRANTED_UNUSED reason is out of date")
    return sorted(lines)


class Plugin:
    """Collects records from every xdist worker and judges them once, in the controlling process."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._gathered: list[dict[str, Any]] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        global _current_test, _recording
        _current_test = item.nodeid
        _recording = item.get_closest_marker("own_resource_names") is None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        mine = _export()
        workeroutput = getattr(self._config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["aws_calls"] = mine
            return
        self._gathered.append(mine)
        self._judge(session)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}).get("aws_calls")
        if output:
            self._gathered.append(output)

    def _judge(self, session: pytest.Session) -> None:
        calls, unknown = [], {}
        for output in self._gathered:
            for caller, action, resource, context, _test in output["calls"]:
                calls.append((caller, Authorisation(action, resource, tuple(tuple(pair) for pair in context))))
            unknown.update(output["unknown"])
        if not calls and not unknown:
            return
        roles = template_roles()
        problems = refused(calls, roles)
        problems += [f"{line} (first in {test})" for line, test in unknown.items()]
        if _whole_suite(session):
            problems += unused_grants(calls, roles)
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        callers = sorted({caller for caller, _ in calls})
        summary = f"least privilege: {len(set(calls))} distinct authorisations by {', '.join(callers)}"
        if reporter is not None:
            reporter.write_sep("-", summary + (": all allowed" if not problems else f": {len(problems)} problems"))
            for line in problems:
                reporter.write_line(f"  {line}")
        if problems and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _export() -> dict[str, Any]:
    with _lock:
        return {
            "calls": [
                [caller, action, resource, [list(pair) for pair in context], test]
                for (caller, action, resource, context), test in _records.items()
            ],
            "unknown": dict(_unknown),
        }


def _whole_suite(session: pytest.Session) -> bool:
    """Whether every test was selected: only then can an unused grant be told from an untested one."""
    options = session.config.option
    if options.keyword or options.markexpr or getattr(options, "lf", False) or session.testsfailed:
        return False
    given = [arg for arg in session.config.invocation_params.args if not str(arg).startswith("-")]
    return all(Path(arg).resolve() == Path(REPO, "tests").resolve() for arg in given if Path(arg).exists())
