"""The Logger, Tracer and Metrics singletons, created once and shared by every module.

Powertools' Tracer loads the X-Ray SDK when it is created, about a quarter of a second of every
cold start, even where tracing is off. The tracer here is Powertools' own when tracing is on (in
Lambda, unless POWERTOOLS_TRACE_DISABLED says otherwise) and otherwise decorators that leave the
function as it is, so a function that does not trace never loads the SDK. Lambda's active tracing
records each invocation (its init, duration and errors) without the SDK; the SDK adds a subsegment
per handler and per AWS call, for when a deployment turns it on (template parameter XRaySdkTracing).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

Function = TypeVar("Function", bound=Callable[..., Any])

_TRUTHY = frozenset({"1", "true", "yes", "on", "y", "t"})


def tracing_enabled(environment: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Powertools' own rule: in Lambda (not SAM local or Chalice), unless disabled explicitly."""
    if environment.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUTHY:
        return False
    in_lambda = bool(environment.get("LAMBDA_TASK_ROOT"))
    emulated = bool(environment.get("AWS_SAM_LOCAL") or environment.get("AWS_CHALICE_CLI_MODE"))
    return in_lambda and not emulated


class _UntracedTracer:
    """The decorators of Powertools' Tracer that this service uses, doing nothing."""

    def capture_lambda_handler(self, handler: Function) -> Function:
        return handler

    def capture_method(self, method: Function) -> Function:
        return method


def _tracer() -> Any:
    if not tracing_enabled():
        return _UntracedTracer()
    from aws_lambda_powertools import Tracer

    return Tracer()


logger = Logger()
tracer = _tracer()
metrics = Metrics()
