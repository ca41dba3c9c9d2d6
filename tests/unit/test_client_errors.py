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


# A token that is not a bearer token: exit 2, the source named, the token never echoed


BAD_TOKENS = ["tok\r\nX-Injected: 1", "tok\nen", "tøken-ø", "tok\x00en", "tok en", "t\u2028k", "tok\x7f"]


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_a_bad_token_from_the_flag_or_environment_is_a_usage_error_that_never_shows_it(call, service, token):
    for argv, environment, source in (
        (("list", "--token", token), {}, "--token"),
        (("list", "-O", "json"), {"REPORTS_TOKEN": token}, "REPORTS_TOKEN"),
    ):
        exit_status, out, err = call(*argv, **environment)

        assert exit_status == 2, err
        assert f"the token from {source} is not a bearer token" in err
        assert token not in err and token not in out and token.strip() not in err
        assert "Traceback" not in err
    assert service.requests == []


def _profile(tmp_path: Path, line: str) -> str:
    config = tmp_path / "profiles.toml"
    config.write_text(f"[profiles.default]\n{line}\n", encoding="utf-8")
    return str(config)


@pytest.mark.parametrize("token", ["tok\\r\\nen", "tøken", "tok\\u0007en"])
def test_a_bad_token_in_the_profile_is_a_usage_error(call, service, tmp_path, token):
    config = _profile(tmp_path, f'token = "{token}"')

    exit_status, out, err = call("list", "-O", "json", REPORTS_CONFIG=config, REPORTS_TOKEN="")

    assert exit_status == 2
    assert "the token from profile default is not a bearer token" in err
    assert json.loads(out)["error"]["code"] == "USAGE_ERROR"
    assert "tok" not in err.replace("token", "")
    assert service.requests == []


@pytest.mark.parametrize("printed", [r"tok\r\nen", r"tok\nen", r"t\303\270ken", r"\377\376tok", r"tok\001en"])
def test_a_bad_token_from_a_token_command_is_a_usage_error(call, service, tmp_path, printed):
    script = tmp_path / "token.sh"
    script.write_text(f"printf '{printed}\\n'\n")
    config = _profile(tmp_path, f'token_command = "sh {script}"')

    exit_status, _, err = call("list", REPORTS_CONFIG=config, REPORTS_TOKEN="")

    assert exit_status == 2, err
    assert "the token from the token_command of profile 'default' is not a bearer token" in err
    assert "tok" not in err.replace("token", "") and "Traceback" not in err
    assert service.requests == []


def test_a_token_commands_trailing_newline_is_not_part_of_the_token(call, service, tmp_path):
    config = _profile(tmp_path, "token_command = \"printf 'good-token\\\\n'\"")
    service.reply(200, {"items": [], "next_cursor": None})

    exit_status, _, err = call("list", REPORTS_CONFIG=config, REPORTS_TOKEN="")

    assert exit_status == 0, err
    assert service.requests[0]["headers"]["Authorization"] == "Bearer good-token"


# 429 and 503 with Retry-After: the service's envelope, not "too many error responses"


@pytest.mark.parametrize(
    ("argv", "method"),
    [
        (("show", "j1"), "GET"),
        (("list",), "GET"),
        (("cancel", "j1"), "DELETE"),
        (("schedules", "delete", "s1"), "DELETE"),
    ],
)
@pytest.mark.parametrize(("status", "exit_code"), [(429, 1), (503, 5)])
def test_a_retry_after_answer_keeps_the_services_envelope(call, service, argv, method, status, exit_code):
    service.reply(status, envelope("SLOW_DOWN", "The service says wait", "tr-9"), {"Retry-After": "3"})

    exit_status, out, err = call(*argv, "-O", "json")

    assert exit_status == exit_code, err
    assert f"SLOW_DOWN (HTTP {status}): The service says wait" in err
    assert "traceId: tr-9" in err
    document = json.loads(out)["error"]
    assert (document["code"], document["traceId"], document["status"]) == ("SLOW_DOWN", "tr-9", status)
    if status == 429:
        assert "retry after 3 s" in err
    assert [request["method"] for request in service.requests] == [method]


def test_a_put_answered_429_keeps_the_envelope(call, service, monkeypatch):
    from report_client.api import Api

    monkeypatch.setattr(Api, "schedule", lambda self, schedule_id: {"id": schedule_id, "version": 1})
    service.reply(429, envelope("TOO_MANY_REQUESTS", "Slow down"), {"Retry-After": "2"})

    exit_status, _, err = call("schedules", "update", "s1", "--description", "x")

    assert exit_status == 1
    assert "TOO_MANY_REQUESTS (HTTP 429): Slow down" in err and "retry after 2 s" in err
    assert [request["method"] for request in service.requests] == ["PUT"]


def test_connections_that_could_not_be_made_are_still_retried():
    from report_client.api import _RETRIES

    assert _RETRIES.connect == 3 and _RETRIES.read == 0 and _RETRIES.status == 0
    assert not _RETRIES.respect_retry_after_header


# Local file errors while saving: exit 6, the path and the OS's reason, no temporary file left


JOB = {
    "id": "j1",
    "status": "succeeded",
    "sha256": "0" * 64,
    "size_bytes": 3,
    "file_name": "report.csv",
    "download_url": "unused",
}


def _download_fixture(monkeypatch, data: bytes = b"abc") -> None:
    import hashlib

    from report_client.api import Api

    job = {**JOB, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
    monkeypatch.setattr(Api, "job", lambda self, job_id: job)
    monkeypatch.setattr(Api, "download_link", lambda self, job_id: {"download_url": "http://files/x"})
    monkeypatch.setattr(Api, "stream_file", lambda self, url: iter([data]))


def test_a_directory_in_the_way_of_the_file_name_exits_6(call, monkeypatch, tmp_path):
    _download_fixture(monkeypatch)
    (tmp_path / "report.csv").mkdir()
    monkeypatch.chdir(tmp_path)

    for argv in (("download", "j1", "-o", str(tmp_path)), ("download", "j1")):
        exit_status, out, err = call(*argv, "-O", "json")

        assert exit_status == ExitCode.LOCAL_FILE == 6, err
        assert json.loads(out)["error"]["code"] == "LOCAL_FILE_ERROR"
        assert f"cannot write {tmp_path / 'report.csv'}: a directory is in the way" in err
        assert [path.name for path in tmp_path.iterdir()] == ["report.csv"]

    exit_status, _, err = call("download", "j1", "-o", str(tmp_path / "sub" / "report.csv"))
    assert exit_status == 2 and "nothing was sent" in err


def test_a_directory_appearing_under_the_target_name_exits_6_and_leaves_no_temporary(monkeypatch, tmp_path):
    import hashlib

    from report_client.downloads import Expected, save_verified
    from report_client.errors import LocalFileError

    target = tmp_path / "report.csv"
    target.mkdir()
    expected = Expected(sha256=hashlib.sha256(b"abc").hexdigest(), size_bytes=3, file_name="report.csv")

    with pytest.raises(LocalFileError, match="report.csv: a directory is in the way"):
        save_verified(iter([b"abc"]), target, expected)
    assert [path.name for path in tmp_path.iterdir()] == ["report.csv"]


@pytest.mark.parametrize(
    ("where", "error", "reason"),
    [
        ("write", OSError(28, "No space left on device"), "No space left on device"),
        ("fsync", OSError(5, "Input/output error"), "Input/output error"),
        ("replace", PermissionError(13, "Permission denied"), "Permission denied"),
    ],
)
def test_an_os_error_while_writing_or_renaming_exits_6_and_removes_the_temporary(
    call, monkeypatch, tmp_path, where, error, reason
):
    import os
    import tempfile

    _download_fixture(monkeypatch)

    def failing(*args, **kwargs):
        raise error

    if where == "write":
        real = tempfile.NamedTemporaryFile

        def named(*args, **kwargs):
            handle = real(*args, **kwargs)
            handle.write = failing
            return handle

        monkeypatch.setattr(tempfile, "NamedTemporaryFile", named)
    else:
        monkeypatch.setattr(os, where, failing)

    exit_status, _, err = call("download", "j1", "-o", str(tmp_path))

    assert exit_status == 6, err
    assert f"cannot write {tmp_path / 'report.csv'}: {reason}" in err
    assert list(tmp_path.iterdir()) == [] or [p.name for p in tmp_path.iterdir()] == ["absent.toml"]


def test_a_directory_that_cannot_be_written_is_refused_before_anything_is_sent(call, service, tmp_path):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        exit_status, _, err = call("download", "j1", "-o", str(locked) + "/")
        assert exit_status == 2 and "permission denied; nothing was sent" in err
        assert service.requests == []
    finally:
        locked.chmod(0o700)


def test_exit_code_6_is_documented():
    assert "  6    the file could not be written here" in EXIT_CODES_HELP
    docs = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
    assert "| 6 " in docs.read_text(encoding="utf-8") or "`6`" in docs.read_text(encoding="utf-8")


# --wait -o: the destination is checked before anything is sent


@pytest.mark.parametrize(
    "argv",
    [
        ("create", "--type", "TELEMETRY_EXPORT", "--wait"),
        ("reexport", "j1", "--reason", "audit", "--wait"),
        ("schedules", "fire", "s1", "--wait"),
    ],
)
@pytest.mark.parametrize("destination", ["nodir/sub/", "nodir/sub/file.csv", "afile/"])
def test_a_wait_destination_that_cannot_be_written_is_refused_before_sending(
    call, service, tmp_path, monkeypatch, argv, destination
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")

    exit_status, out, err = call(*argv, "-o", destination, "-O", "json")

    assert exit_status == 2, err
    assert "nothing was sent" in err
    assert json.loads(out)["error"]["code"] == "USAGE_ERROR"
    assert service.requests == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("create", "--type", "X", "-o", "f.csv"), "only used with --wait"),
        (("create", "--type", "X", "--wait", "--no-download", "-o", "f.csv"), "exclude each other"),
        (("reexport", "j1", "--reason", "r", "--no-download"), "only used with --wait"),
    ],
)
def test_wait_options_that_do_not_go_together_are_refused(call, service, argv, message):
    exit_status, _, err = call(*argv)

    assert exit_status == 2 and message in err
    assert service.requests == []


# API URLs that cannot be used: exit 2 at settings time


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://127.0.0.1:99999", "out of range"),
        ("http://127.0.0.1:3000/?stage=x", "must not have a query"),
        ("http://127.0.0.1:3000#top", "must not have a query"),
        ("http://127.0.0.1:3000?", "must not have a query"),
        ("ftp://127.0.0.1", "http:// or https://"),
        ("127.0.0.1:3000", "http:// or https://"),
        ("http://", "no host"),
        ("http://host name", "spaces or control characters"),
        ("http://user:pw@host", "user name or password"),
    ],
)
def test_an_api_url_that_cannot_be_used_is_a_usage_error(call, url, reason):
    for argv, environment in ((("list", "--api-url", url), {}), (("list",), {"REPORTS_API_URL": url})):
        exit_status, out, err = call(*argv, "-O", "json", **environment)

        assert exit_status == 2, err
        assert "cannot be used" in err and reason in err
        assert json.loads(out)["error"]["code"] == "USAGE_ERROR"
        assert "Traceback" not in err


def test_an_api_url_with_a_path_is_used_and_a_bare_gateway_404_hints_at_the_base(call, service):
    service.reply(404, {"message": "Not Found"})

    exit_status, _, err = call("show", "j1", REPORTS_API_URL=service.url + "/api/v1")

    assert exit_status == 1
    assert service.requests[0]["path"] == "/api/v1/api/v1/reports/jobs/j1"
    assert "should be the service's base URL, without /api/v1" in err

    exit_status, _, err = call("show", "j1")
    assert exit_status == 1 and "without /api/v1" not in err


# Answers that are not the API's JSON object


@pytest.mark.parametrize(
    ("body", "content_type", "what"),
    [
        (b"<html><body>Welcome</body></html>", "text/html", "text/html"),
        (b"plain words", "text/plain", "text/plain"),
        (b"[1, 2]", "application/json", "JSON that is not an object"),
        (b"null", "application/json", "JSON that is not an object"),
        (b'"a string"', "application/json", "JSON that is not an object"),
        (b"", "application/json", "an empty body"),
    ],
)
@pytest.mark.parametrize("argv", [("show", "j1"), ("list",), ("types",), ("create", "--type", "X")])
def test_a_success_that_is_not_the_apis_json_object_exits_5(call, service, body, content_type, what, argv):
    service.reply(200, body, {"Content-Type": content_type})

    exit_status, out, err = call(*argv, "-O", "json")

    assert exit_status == 5, err
    assert f"answered with something that is not the report API's JSON (HTTP 200, {what})" in err
    assert json.loads(out)["error"]["code"] == "BAD_ANSWER"
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("status", "body", "exit_code"),
    [
        (400, b"<?xml version='1.0'?><Error><Code>Bad</Code></Error>", 1),
        (404, b"<html>\r\n<title>404</title>\x00\x1b[31m" + b"x" * 300, 1),
        (500, b"Internal Server Error\n\ttrace line", 5),
        (502, b"[1, 2]", 5),
    ],
)
def test_an_error_with_a_body_that_is_not_json_gives_a_short_clean_excerpt(call, service, status, body, exit_code):
    service.reply(status, body, {"Content-Type": "text/html"})

    exit_status, out, err = call("show", "j1", "-O", "json")

    assert exit_status == exit_code
    message = json.loads(out)["error"]["message"]
    assert len(message) <= 110
    assert all(character.isprintable() for character in message)
    assert message[:5] == body.decode(errors="replace")[:5]
    assert "Traceback" not in err


# A config file that is not UTF-8


def test_a_config_file_that_is_not_utf8_is_a_usage_error(call, tmp_path):
    config = tmp_path / "config.toml"
    config.write_bytes(b'[profiles.default]\napi_url = "http://h\xff\xfe"\n')

    exit_status, out, err = call("list", "-O", "json", REPORTS_CONFIG=str(config))

    assert exit_status == 2
    assert "is not UTF-8" in err and "Traceback" not in err
    assert json.loads(out)["error"]["code"] == "USAGE_ERROR"


# Options that exclude each other, and empty ids


@pytest.mark.parametrize(
    "argv",
    [
        ("reexport", "j1", "--reason", "x", "--no-filters", "--filter", "a=1"),
        ("reexport", "j1", "--reason", "x", "--filter", "a=1", "--no-filters"),
        ("schedules", "update", "s1", "--no-filters", "--filter", "a=1"),
    ],
)
def test_no_filters_and_filter_exclude_each_other(call, service, argv):
    exit_status, _, err = call(*argv)

    assert exit_status == 2 and "--no-filters and --filter exclude each other" in err
    assert service.requests == []


@pytest.mark.parametrize(
    "argv",
    [
        ("show", ""),
        ("cancel", " "),
        ("download", ""),
        ("history", ""),
        ("reexport", "", "--reason", "x"),
        ("reexports", "show", ""),
        ("reexports", "cancel", ""),
        ("schedules", "show", ""),
        ("schedules", "update", "", "--description", "x"),
        ("schedules", "delete", ""),
        ("schedules", "fire", ""),
        ("types", ""),
    ],
)
def test_an_empty_id_is_a_usage_error(call, service, argv):
    exit_status, _, err = call(*argv)

    assert exit_status == 2 and "an id cannot be empty" in err
    assert service.requests == []


# The idempotency key hint is shell-quoted


def test_the_idempotency_key_retry_hint_is_shell_quoted(call, service):
    import shlex

    service.reply(201, {"id": "j1", "status": "queued"})

    exit_status, _, err = call("create", "--type", "X", "--idempotency-key", "bad key ø'$x")

    assert exit_status == 0
    assert f"--idempotency-key {shlex.quote('bad key ø' + chr(39) + '$x')}" in err
    assert shlex.split(err.split("retry with ")[1].split(")")[0])[1] == "bad key ø'$x"


# stdout closed early (`reports types | head -2`): exit 0, quietly


MANY_TYPES = {
    "items": [
        {"job_type": f"TYPE_{index}_EXPORT", "title": "A report " * 5, "formats": ["csv", "json"], "columns": []}
        for index in range(400)
    ]
}


@pytest.mark.parametrize("mode", ["table", "json"])
def test_a_reader_that_goes_away_is_exit_0_without_a_message(service, tmp_path, mode):
    import os
    import subprocess
    import sys

    service.reply(200, MANY_TYPES)
    environ = {
        **os.environ,
        "REPORTS_CONFIG": str(tmp_path / "absent.toml"),
        "REPORTS_API_URL": service.url,
        "REPORTS_TOKEN": "test-token",
    }
    for _ in range(3):
        process = subprocess.Popen(
            [sys.executable, "-m", "report_client", "types", "-O", mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environ,
        )
        process.stdout.close()  # the reader is gone before the first line is written
        err = process.stderr.read().decode()
        assert process.wait(timeout=60) == 0, err
        assert err == ""


def test_a_table_on_stdout_that_is_not_a_terminal_is_laid_out_wide(call, service):
    sha = "ab" * 32
    job = {
        "id": "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f",
        "status": "succeeded",
        "sha256": sha,
        "job_type": "FEED_INTAKE_EXPORT",
        "created_at": "2026-12-02T17:10:42.905Z",
        "farm_id": "farm-12",
        "start_date": "2025-01-01",
        "end_date": "2025-01-31",
        "format": "csv",
        "row_count": 12345,
    }
    service.reply(200, {"items": [job] * 2, "next_cursor": None})

    exit_status, out, _ = call("list")
    assert exit_status == 0
    for cell in (job["id"], "FEED_INTAKE_EXPORT", "succeeded", "farm=farm-12", "2025-01-01..2025-01-31", "created"):
        assert cell in out

    service.reply(200, job)
    exit_status, out, _ = call("show", job["id"])
    assert exit_status == 0
    assert sha in out and job["id"] in out


@pytest.mark.parametrize(
    "argv",
    [("create", "--type", "X"), ("show", "j1"), ("download", "j1"), ("reexport", "j1", "--reason", "r")],
)
def test_an_object_without_the_fields_a_command_reads_is_a_bad_answer(call, service, argv):
    service.reply(200, {"hello": "world"})

    exit_status, out, err = call(*argv, "-O", "json")

    assert exit_status == 5, err
    assert "not the report API's JSON (an object without" in err
    assert json.loads(out)["error"]["code"] == "BAD_ANSWER"
