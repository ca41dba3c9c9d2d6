"""Errors on the command line: the service's code, message and traceId on stderr (and as JSON with
--output json), the documented exit codes, and never a Python traceback, whatever went wrong."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from report_client.cli import run
from report_client.errors import EXIT_CODES_HELP, ExitCode
from report_client.parser import build_parser


class Canned:
    """An HTTP server that answers every request with one canned reply, and keeps what it was sent."""

    def __init__(self) -> None:
        self.status, self.body, self.headers = 200, b"{}", {"Content-Type": "application/json"}
        self.requests: list[dict[str, Any]] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                canned.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length) if length else b"",
                    }
                )
                self.send_response(canned.status)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.headers = {"Content-Type": "application/json", **(headers or {})}


@pytest.fixture
def service() -> Iterator[Canned]:
    canned = Canned()
    yield canned
    canned.server.shutdown()
    canned.server.server_close()


@pytest.fixture
def call(service: Canned, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    def invoke(*argv: str, **environment: str) -> tuple[int, str, str]:
        environ = {"REPORTS_CONFIG": str(tmp_path / "absent.toml"), "REPORTS_API_URL": service.url}
        environ.update({"REPORTS_TOKEN": "test-token", **environment})
        code = run(list(argv), {name: value for name, value in environ.items() if value})
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def envelope(code: str, message: str, trace: str = "trace-123") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "traceId": trace}}


@pytest.mark.parametrize(
    ("status", "code", "exit_code"),
    [
        (400, "VALIDATION_ERROR", ExitCode.REFUSED),
        (404, "NOT_FOUND", ExitCode.REFUSED),
        (409, "REPORT_NOT_READY", ExitCode.REFUSED),
        (500, "INTERNAL", ExitCode.UNAVAILABLE),
        (503, "SERVICE_UNAVAILABLE", ExitCode.UNAVAILABLE),
    ],
)
def test_the_services_error_is_printed_with_its_code_message_and_trace_id(call, service, status, code, exit_code):
    service.reply(status, envelope(code, "What the service said"))

    exit_status, out, err = call("show", "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f")

    assert exit_status == exit_code
    assert f"{code} (HTTP {status}): What the service said" in err
    assert "traceId: trace-123" in err
    assert "Traceback" not in err
    assert out == ""


def test_with_output_json_the_error_is_also_the_one_document_on_stdout(call, service):
    service.reply(404, envelope("NOT_FOUND", "No such job", "abc"))

    exit_status, out, err = call("show", "j1", "--output", "json")

    assert exit_status == 1
    assert json.loads(out) == {
        "error": {"code": "NOT_FOUND", "message": "No such job", "traceId": "abc", "status": 404, "exit_code": 1}
    }
    assert "NOT_FOUND" in err


def test_the_gateways_own_401_is_explained(call, service):
    service.reply(401, {"message": "Unauthorized"}, {"apigw-requestid": "gw-42"})

    exit_status, _, err = call("list")

    assert exit_status == 1
    assert "UNAUTHORIZED (HTTP 401): Unauthorized" in err
    assert "traceId: gw-42" in err
    assert "the gateway refused the token" in err


def test_an_answer_that_is_not_json_is_still_an_error_message(call, service):
    service.reply(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"})

    exit_status, _, err = call("list")

    assert exit_status == 5
    assert "HTTP_502 (HTTP 502): <html>Bad Gateway</html>" in err
    assert "Traceback" not in err


def test_429_says_when_to_retry(call, service):
    service.reply(429, envelope("TOO_MANY_ACTIVE_JOBS", "Too many jobs"), {"Retry-After": "7"})

    exit_status, _, err = call("create", "--type", "TELEMETRY_EXPORT")

    assert exit_status == 1
    assert "retry after 7 s" in err


def test_a_service_that_cannot_be_reached_exits_5(call):
    exit_status, _, err = call("list", REPORTS_API_URL="http://127.0.0.1:9")

    assert exit_status == 5
    assert "could not be reached" in err and "Connection refused" in err
    assert "Traceback" not in err


def test_without_a_token_nothing_is_sent_and_the_error_says_where_a_token_comes_from(call, service):
    exit_status, _, err = call("list", REPORTS_TOKEN="")

    assert exit_status == 2
    assert "no token: give --token, set REPORTS_TOKEN" in err
    assert service.requests == []


def test_a_bad_config_file_is_a_usage_error(call, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[profiles.default\n")

    exit_status, _, err = call("list", REPORTS_CONFIG=str(config))

    assert exit_status == 2
    assert "is not valid TOML" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["nope"], "invalid choice: 'nope'"),
        (["create"], "the following arguments are required: --type"),
        (["list", "--limit", "500"], "not a page size"),
        (["create", "--type", "X", "--filter", "oops"], "is not NAME=VALUE"),
        (["schedules", "update", "s1"], "nothing to change"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(call, argv, message):
    exit_status, out, err = call(*argv)

    assert exit_status == 2
    assert message in err
    assert "Traceback" not in err and out == ""


def test_the_request_carries_the_token_and_the_body(call, service):
    service.reply(201, {"id": "j1", "status": "queued", "job_type": "TELEMETRY_EXPORT", "format": "csv"})

    exit_status, out, err = call("create", "--type", "TELEMETRY_EXPORT", "--filter", "n=1", "-O", "json")

    assert exit_status == 0
    sent = service.requests[0]
    body = json.loads(sent["body"])
    assert (sent["method"], sent["path"], sent["headers"]["Authorization"]) == (
        "POST",
        "/api/v1/reports/jobs",
        "Bearer test-token",
    )
    assert body["filters"] == {"n": 1} and body["job_type"] == "TELEMETRY_EXPORT"
    # The generated idempotency key is printed (stderr), so a retry can reuse it.
    assert body["idempotency_key"] in err
    assert json.loads(out)["id"] == "j1"


def test_firing_on_a_deployed_stage_says_only_the_local_stack_fires(call, service):
    service.reply(404, {"message": "Not Found"})

    exit_status, _, err = call("schedules", "fire", "s1")

    assert exit_status == 1
    assert "NOT_LOCAL_STACK" in err and "only the local stack" in err
    assert "Authorization" not in service.requests[0]["headers"]


def test_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--help"])

    assert exited.value.code == 0
    assert EXIT_CODES_HELP in capsys.readouterr().out


def test_a_bug_in_the_client_is_one_message_and_exit_70_unless_debugging(call, service, monkeypatch):
    service.reply(200, {"id": "j1", "status": "queued"})

    def broken(self, *args, **kwargs):
        raise RuntimeError("the renderer tripped")

    monkeypatch.setattr("report_client.output.Output.result", broken, raising=True)

    exit_status, out, err = call("show", "j1", "-O", "json")
    assert exit_status == ExitCode.INTERNAL == 70
    assert json.loads(out)["error"]["code"] == "CLIENT_BUG"
    assert "the renderer tripped" in err and "Traceback" not in err

    with pytest.raises(RuntimeError, match="the renderer tripped"):
        call("show", "j1", REPORTS_DEBUG="1")
