"""A local Lambda runtime: each function of the template runs its real handler in processes of its own.

A process per function (and more, up to the function's concurrency) is what keeps this close to
Lambda: each function sees only the environment the template gives it, imports exactly its code
folder and layers, keeps its module-level state between invocations (warm starts), and one
function's Powertools singletons never see another's invocations. A function that overruns its
Timeout is killed and replaced, as Lambda replaces a timed-out sandbox.

This module is imported by every function process: it stays light (no boto3, no moto).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # cfn-lint is slow to import and function processes never read the template
    from local.template import Template

# Variables a Lambda sandbox would have that are not the template's; the rest of the caller's
# environment (an AWS_PROFILE, a real region) must not leak into the functions.
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "SYSTEMROOT")


_RUN_PROPERTIES = ("Handler", "CodeUri", "Timeout", "MemorySize", "Environment", "FunctionName")


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    handler: str  # module.attribute, as in the template's Handler
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    timeout_sec: int
    memory_mb: int
    arn: str
    environment: dict[str, str] = field(default_factory=dict)  # the template's variables, resolved


def function_specs(template: Template) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function, with Globals applied and its environment resolved."""
    specs = {}
    for logical_id in template.resources_of_type("AWS::Serverless::Function"):
        raw = template.function_properties(logical_id)
        # Only what running the function needs: policies and the like may name things moto does not have.
        props = template.resolve({name: value for name, value in raw.items() if name in _RUN_PROPERTIES})
        layer_dirs = []
        for layer in raw.get("Layers", []):
            layer_id = layer.get("Ref") if isinstance(layer, Mapping) else None
            layer_props = template.resources.get(str(layer_id), {}).get("Properties", {})
            if "ContentUri" in layer_props:  # a layer of this template: its folder is /opt/python in Lambda
                layer_dirs.append(template.directory / str(layer_props["ContentUri"]))
        variables = props.get("Environment", {}).get("Variables", {})
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=template.physical.refs[logical_id],
            handler=str(props["Handler"]),
            code_dir=template.directory / str(props["CodeUri"]),
            layer_dirs=tuple(layer_dirs),
            timeout_sec=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            arn=template.physical.attributes[(logical_id, "Arn")],
            environment={name: _env_text(value) for name, value in variables.items()},
        )
    return specs


def _env_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def sandbox_environment(spec: FunctionSpec, runtime_variables: Mapping[str, str]) -> dict[str, str]:
    """What the function's process sees: the variables Lambda sets, then the template's."""
    environment = {name: os.environ[name] for name in _PASSED_THROUGH if name in os.environ}
    environment.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(spec.timeout_sec),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "_HANDLER": spec.handler,
        }
    )
    environment.update(runtime_variables)
    environment.update(spec.environment)
    return environment


class FunctionError(Exception):
    """The invocation failed (the handler raised, or the function timed out), as Lambda reports it."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


class _LambdaContext:
    """The attributes of the Lambda Python runtime's context object that handlers read."""

    def __init__(self, spec: FunctionSpec, request_id: str, deadline: float) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = spec.arn
        self.memory_limit_in_mb = spec.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _serve(connection: Connection, spec: FunctionSpec, environment: dict[str, str]) -> None:
    """The function process: import the handler once (cold start), then invoke it per request."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the stack's to handle; it stops us
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ.clear()
    os.environ.update(environment)
    sys.path[:0] = [str(spec.code_dir), *(str(layer) for layer in spec.layer_dirs)]
    module_name, _, attribute = spec.handler.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except Exception as error:
        traceback.print_exc()
        connection.send(("error", (type(error).__name__, f"cannot import {spec.handler}: {error}")))
        return
    connection.send(("ready", None))
    while True:
        try:
            event, request_id, deadline = connection.recv()
        except (EOFError, OSError):
            return  # the stack closed the pipe: stop
        try:
            result = handler(event, _LambdaContext(spec, request_id, deadline))
        except Exception as error:
            traceback.print_exc()
            connection.send(("error", (type(error).__name__, str(error))))
        else:
            connection.send(("ok", result))


class _Sandbox:
    """One process running one function."""

    def __init__(self, spec: FunctionSpec, environment: dict[str, str]) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter, as a cold start is
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, spec, environment), name=f"lambda-{spec.logical_id}", daemon=True
        )
        self._process.start()
        child.close()
        self._spec = spec

    def wait_ready(self, timeout_sec: float) -> None:
        if not self._connection.poll(timeout_sec):
            self.stop()
            raise FunctionError("Sandbox.Timedout", f"{self._spec.logical_id} did not start in {timeout_sec} s")
        status, detail = self._connection.recv()
        if status != "ready":
            self.stop()
            raise FunctionError(*detail)

    def invoke(self, event: Any) -> Any:
        deadline = time.time() + self._spec.timeout_sec
        self._connection.send((event, str(uuid.uuid4()), deadline))
        if not self._connection.poll(self._spec.timeout_sec):
            self.stop()
            raise FunctionError("Sandbox.Timedout", f"Task timed out after {self._spec.timeout_sec} seconds")
        try:
            status, detail = self._connection.recv()
        except EOFError:
            self.stop()
            raise FunctionError("Runtime.ExitError", "the function's process exited") from None
        if status == "error":
            raise FunctionError(*detail)
        return detail

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def kill(self) -> None:
        self._process.kill()

    def stop(self, *, wait: bool = True) -> None:
        self._connection.close()  # the process sees EOF and returns
        if not wait:
            return
        self._process.join(timeout=3)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


class LocalFunction:
    """A function with up to `concurrency` warm sandboxes; an invocation waits for a free one."""

    def __init__(self, spec: FunctionSpec, runtime_variables: Mapping[str, str], concurrency: int = 1) -> None:
        self.spec = spec
        self._environment = sandbox_environment(spec, runtime_variables)
        self._concurrency = max(1, concurrency)
        self._available = threading.Condition()
        self._count = 0  # sandboxes running or starting
        self._idle: list[_Sandbox] = []
        self._busy: set[_Sandbox] = set()
        self._warming: _Sandbox | None = None
        self._stopping: list[_Sandbox] = []
        self._stopped = False

    def begin_start(self) -> None:
        """Start one sandbox now, so the first request is not also a cold start (without waiting for it,
        so that every function starts in parallel, and with the rest of the stack)."""
        with self._available:
            self._count += 1
        self._warming = _Sandbox(self.spec, self._environment)

    def finish_start(self, timeout_sec: float = 60) -> None:
        sandbox, self._warming = self._warming, None
        if sandbox is None:
            return
        self._wait_ready(sandbox, timeout_sec)
        self._release(sandbox)

    def processes(self) -> dict[str, list[int]]:
        """The process ids of its sandboxes: busy (in an invocation) and idle. Killing a busy one from
        outside is how a test kills a worker mid-file, as Lambda loses a sandbox that runs out of memory."""
        with self._available:
            return {
                "busy": sorted(pid for sandbox in self._busy if (pid := sandbox.pid) is not None),
                "idle": sorted(pid for sandbox in self._idle if (pid := sandbox.pid) is not None),
            }

    def invoke(self, event: Any) -> Any:
        """The handler's result, or FunctionError when it raised or timed out."""
        sandbox = self._acquire()
        try:
            return sandbox.invoke(event)
        finally:
            self._release(sandbox)

    def _acquire(self) -> _Sandbox:
        with self._available:
            while True:
                if self._stopped:
                    raise FunctionError("Sandbox.Stopped", "the local stack is stopping")
                if self._idle:
                    sandbox = self._idle.pop()
                    self._busy.add(sandbox)
                    return sandbox
                if self._count < self._concurrency:
                    self._count += 1
                    break
                self._available.wait()
        sandbox = _Sandbox(self.spec, self._environment)
        self._wait_ready(sandbox, 60)
        with self._available:
            self._busy.add(sandbox)
        return sandbox

    def _wait_ready(self, sandbox: _Sandbox, timeout_sec: float) -> None:
        try:
            sandbox.wait_ready(timeout_sec)
        except FunctionError:
            with self._available:
                self._count -= 1
                self._available.notify()
            raise

    def _release(self, sandbox: _Sandbox) -> None:
        with self._available:
            self._busy.discard(sandbox)
            if sandbox.alive and not self._stopped:
                self._idle.append(sandbox)
            else:
                self._count -= 1  # a timed-out sandbox was killed; the next invocation starts a new one
                self._stopping.append(sandbox)
            self._available.notify()
        if self._stopped:
            sandbox.stop()

    def stop(self, *, wait: bool = True) -> None:
        """Stop every sandbox: idle ones exit (all at once), one in the middle of an invocation is killed."""
        with self._available:
            self._stopped = True
            self._stopping.extend(self._idle)
            if self._warming is not None:
                self._stopping.append(self._warming)
            self._idle, self._warming = [], None
            busy = list(self._busy)
            self._available.notify_all()
        for sandbox in self._stopping:
            sandbox.stop(wait=False)
        for sandbox in busy:
            sandbox.kill()
        if wait:
            for sandbox in self._stopping:
                sandbox.stop()
