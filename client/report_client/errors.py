"""What can go wrong, each with the exit code scripts rely on (docs/cli.md lists them)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1  # the service answered 4xx
    USAGE = 2  # bad arguments or configuration: nothing was sent, or could not be
    JOB_UNSUCCESSFUL = 3  # the job (or re-export) ended failed or cancelled
    VERIFICATION_FAILED = 4  # the downloaded file is not the one the service describes
    UNAVAILABLE = 5  # no answer, a 5xx, or an answer that is not the API's
    LOCAL_FILE = 6  # the file could not be written here (permission, disk full, a directory in the way)
    INTERNAL = 70  # a bug in the client itself (sysexits' EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


EXIT_CODES_HELP = """exit codes:
  0    ok
  1    the service refused the request (HTTP 4xx: validation, not found, forbidden, conflict...)
  2    usage error: bad arguments or configuration (no API URL, no token, unknown profile)
  3    the job (or re-export) ended failed or cancelled
  4    download verification failed: size or sha256 differ from the job's (no file is left)
  5    the service could not be reached, timed out, answered HTTP 5xx, or answered with something
       that is not the report API's JSON
  6    the file could not be written here (permission denied, disk full, a directory in the way)
  70   a bug in the client itself (REPORTS_DEBUG=1 shows its traceback)
  130  interrupted (Ctrl-C)"""


class CliError(Exception):
    """An error the command line reports in one message, never as a traceback."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def document(self) -> dict[str, Any]:
        """The error as --output json puts it on stdout."""
        body: dict[str, Any] = {"code": self.code, "message": self.message, "exit_code": int(self.exit_code)}
        if self.hint:
            body["hint"] = self.hint
        return {"error": body}

    @property
    def code(self) -> str:
        return {
            ExitCode.USAGE: "USAGE_ERROR",
            ExitCode.JOB_UNSUCCESSFUL: "JOB_UNSUCCESSFUL",
            ExitCode.VERIFICATION_FAILED: "VERIFICATION_FAILED",
            ExitCode.UNAVAILABLE: "UNREACHABLE",
            ExitCode.LOCAL_FILE: "LOCAL_FILE_ERROR",
            ExitCode.INTERRUPTED: "INTERRUPTED",
            ExitCode.INTERNAL: "CLIENT_BUG",
        }.get(self.exit_code, "ERROR")


class UsageError(CliError):
    exit_code = ExitCode.USAGE


class ConfigError(CliError):
    exit_code = ExitCode.USAGE


class Unreachable(CliError):
    exit_code = ExitCode.UNAVAILABLE


class BadAnswer(CliError):
    """An answer whose body is not the report API's JSON (another server, a proxy's page)."""

    exit_code = ExitCode.UNAVAILABLE

    @property
    def code(self) -> str:
        return "BAD_ANSWER"


class LocalFileError(CliError):
    exit_code = ExitCode.LOCAL_FILE


class VerificationFailed(CliError):
    exit_code = ExitCode.VERIFICATION_FAILED


class Interrupted(CliError):
    exit_code = ExitCode.INTERRUPTED


class ClientBug(CliError):
    exit_code = ExitCode.INTERNAL


class JobUnsuccessful(CliError):
    """A job that ended failed or cancelled; `record` is what --output json prints (the job itself)."""

    exit_code = ExitCode.JOB_UNSUCCESSFUL

    def __init__(self, message: str, record: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.record = record

    def document(self) -> dict[str, Any]:
        return self.record if self.record is not None else super().document()


class ApiError(CliError):
    """The service's answer to a request it did not carry out, from its envelope
    {"error": {"code", "message", "traceId"}} or the gateway's own {"message": ...}."""

    def __init__(self, status: int, code: str, message: str, trace_id: str | None, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self._code = code
        self.trace_id = trace_id

    @property
    def code(self) -> str:
        return self._code

    @property
    def exit_code(self) -> ExitCode:  # type: ignore[override]
        return ExitCode.UNAVAILABLE if self.status >= 500 else ExitCode.REFUSED

    def document(self) -> dict[str, Any]:
        document = super().document()
        document["error"].update({"status": self.status, "traceId": self.trace_id})
        return document
