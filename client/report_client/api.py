"""The service's HTTP API, and nothing else: every call the command line makes goes through here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, LocationParseError

from report_client import __version__
from report_client.errors import ApiError, BadAnswer, Unreachable
from report_client.settings import Settings

JOBS = "/api/v1/reports/jobs"
REEXPORTS = "/api/v1/report-reexports"
SCHEDULES = "/api/v1/reports/schedules"
REPORT_TYPES = "/api/v1/report-types"
LOCAL_SCHEDULES = "/_local/schedules"  # the local stack's own endpoint: it fires a schedule on demand

# Connection failures are retried (the request never reached the service, so any method is safe to send
# again); answers are not: a 5xx or a timeout after sending may already have done the work. Nor is a 429
# or 503 with Retry-After: its envelope (code, message, traceId, the retry hint) is what the user needs.
_RETRIES = urllib3.Retry(
    total=3,
    connect=3,
    read=0,
    status=0,
    other=0,
    redirect=0,
    backoff_factor=0.3,
    respect_retry_after_header=False,
    raise_on_status=False,
)
_TIMEOUT = urllib3.Timeout(connect=10, read=60)
_DOWNLOAD_CHUNK = 1 << 16


def _path_part(value: str) -> str:
    return quote(value, safe="")


class Api:
    def __init__(self, settings: Settings, pool: urllib3.PoolManager | None = None) -> None:
        self._settings = settings
        self._pool = pool or urllib3.PoolManager(retries=_RETRIES, timeout=_TIMEOUT)
        self._token: str | None = None

    @property
    def base_url(self) -> str:
        return self._settings.require_api_url()

    def _authorization(self) -> str:
        if self._token is None:
            self._token = self._settings.token()
        return f"Bearer {self._token}"

    # The one place a request is sent and its answer read

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
        timeout: urllib3.Timeout | None = None,
        empty_allowed: bool = False,
    ) -> tuple[int, dict[str, str], Any]:
        """The status, headers and JSON object of a successful answer; an error answer raises ApiError,
        and an answer that is not the API's JSON object raises BadAnswer (exit 5)."""
        url = self.base_url + path
        present = {key: _query_value(value) for key, value in (query or {}).items() if value is not None}
        if present:
            url += "?" + urlencode(present)
        sent = {"Accept": "application/json", "User-Agent": f"reports-cli/{__version__}", **(headers or {})}
        if authenticated:
            sent["Authorization"] = self._authorization()
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        try:
            response = self._pool.request(method, url, body=data, headers=sent, timeout=timeout or _TIMEOUT)
        except LocationParseError as error:
            raise Unreachable(f"the API URL {self.base_url} cannot be used: {error}") from None
        except HTTPError as error:
            raise Unreachable(
                f"the service at {self.base_url} could not be reached: {_reason(error)}",
                hint="check --api-url / REPORTS_API_URL; on the local stack, is ./dev run running?",
            ) from None
        answer_headers = {key.lower(): value for key, value in response.headers.items()}
        payload = _json_or_text(response.data)
        if response.status >= 400:
            error = _api_error(response.status, payload, answer_headers)
            if _bare_gateway_404(response.status, payload) and urlsplit(self.base_url).path not in ("", "/"):
                error.hint = (
                    f"the API URL {self.base_url} has a path: it should be the service's base URL, "
                    "without /api/v1 (e.g. https://reports.example.com or http://127.0.0.1:3000)"
                )
            raise error
        if isinstance(payload, dict) or (not response.data and empty_allowed):
            return response.status, answer_headers, payload
        kind = answer_headers.get("content-type") or "no content type"
        what = "an empty body" if not response.data else ("JSON that is not an object" if _is_json(payload) else kind)
        raise self._bad_answer(f"HTTP {response.status}, {what}")

    def get(self, path: str, **query: Any) -> Any:
        return self.request("GET", path, query=query)[2]

    def _having(self, record: dict[str, Any], *keys: str) -> dict[str, Any]:
        """A record the commands read these string fields of (a JSON object without them is not the API's)."""
        missing = [key for key in keys if not isinstance(record.get(key), str) or not record.get(key)]
        if missing:
            raise self._bad_answer(f"an object without {', '.join(missing)}")
        return record

    def _bad_answer(self, what: str) -> BadAnswer:
        return BadAnswer(
            f"the service at {self.base_url} answered with something that is not the report API's JSON ({what})",
            hint="check --api-url / REPORTS_API_URL: it should be the report service's base URL",
        )

    # Jobs

    def create_job(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The job, and whether the service replayed an earlier create with the same idempotency key."""
        _, headers, job = self.request("POST", JOBS, body=body)
        return self._having(job, "id"), headers.get("idempotent-replayed") == "true"

    def job(self, job_id: str) -> dict[str, Any]:
        return self._having(self.get(f"{JOBS}/{_path_part(job_id)}"), "id")

    def jobs(self, **query: Any) -> dict[str, Any]:
        return self.get(JOBS, **query)

    def cancel_job(self, job_id: str) -> tuple[dict[str, Any], bool]:
        """The job, and whether it is cancelled already (False: it stops at its next checkpoint)."""
        status, _, job = self.request("DELETE", f"{JOBS}/{_path_part(job_id)}")
        return job, status == 200

    def download_link(self, job_id: str) -> dict[str, Any]:
        return self._having(self.get(f"{JOBS}/{_path_part(job_id)}/download"), "download_url")

    def history(self, job_id: str, **query: Any) -> dict[str, Any]:
        return self.get(f"{JOBS}/{_path_part(job_id)}/history", **query)

    # Re-exports

    def create_reexport(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        _, headers, record = self.request("POST", REEXPORTS, body=body)
        return self._having(record, "id", "job_id"), headers.get("idempotent-replayed") == "true"

    def reexport(self, reexport_id: str) -> dict[str, Any]:
        return self.get(f"{REEXPORTS}/{_path_part(reexport_id)}")

    def reexports(self, **query: Any) -> dict[str, Any]:
        return self.get(REEXPORTS, **query)

    def cancel_reexport(self, reexport_id: str) -> tuple[dict[str, Any], bool]:
        status, _, record = self.request("DELETE", f"{REEXPORTS}/{_path_part(reexport_id)}")
        return record, status == 200

    # Report types

    def report_types(self) -> Any:
        return self.get(REPORT_TYPES)

    def report_type(self, job_type: str) -> dict[str, Any]:
        return self.get(f"{REPORT_TYPES}/{_path_part(job_type)}")

    # Schedules

    def schedules(self, **query: Any) -> dict[str, Any]:
        return self.get(SCHEDULES, **query)

    def schedule(self, schedule_id: str) -> dict[str, Any]:
        return self.get(f"{SCHEDULES}/{_path_part(schedule_id)}")

    def create_schedule(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", SCHEDULES, body=body)[2]

    def update_schedule(self, schedule_id: str, body: dict[str, Any], version: int) -> dict[str, Any]:
        # If-Match as well as expected_version: a change made since the read answers 409, not lost.
        path = f"{SCHEDULES}/{_path_part(schedule_id)}"
        return self.request("PUT", path, body={**body, "expected_version": version})[2]

    def delete_schedule(self, schedule_id: str, version: int | None = None) -> None:
        headers = {"If-Match": f'"{version}"'} if version is not None else None
        self.request("DELETE", f"{SCHEDULES}/{_path_part(schedule_id)}", headers=headers, empty_allowed=True)

    def fire_schedule(self, schedule_id: str, at: str | None) -> dict[str, Any]:
        """Fire a schedule now through the local stack's own endpoint (no token: it is not an API route).
        A deployed stage has no such endpoint: its gateway answers 404 {"message": "Not Found"}."""
        try:
            return self.request(
                "POST",
                f"{LOCAL_SCHEDULES}/{_path_part(schedule_id)}",
                query={"time": at},
                authenticated=False,
                # A firing runs the function to its end before the stack answers.
                timeout=urllib3.Timeout(connect=10, read=900),
            )[2]
        except ApiError as error:
            if error.status == 404 and error.code == "NOT_FOUND" and error.message == "Not Found":
                raise ApiError(
                    404,
                    "NOT_LOCAL_STACK",
                    f"{self.base_url} does not fire schedules on demand: only the local stack (./dev run) does",
                    error.trace_id,
                    hint="a deployed stage's schedules fire on their own, from EventBridge Scheduler",
                ) from None
            raise

    # Files (presigned URLs: no bearer token, which must never reach a third party such as S3)

    def stream_file(self, url: str) -> Iterator[bytes]:
        try:
            response = self._pool.request("GET", url, preload_content=False, redirect=False, timeout=_TIMEOUT)
        except HTTPError as error:
            raise Unreachable(f"the file could not be fetched: {_reason(error)}") from None
        try:
            if response.status != 200:
                raise _file_error(response.status, response.read(4096))
            try:
                # Raw bytes: a .gz report is stored as application/gzip and must stay compressed, and the
                # sha256 the service gives is of the bytes as stored.
                yield from response.stream(_DOWNLOAD_CHUNK, decode_content=False)
            except HTTPError as error:
                raise Unreachable(f"the file download broke off: {_reason(error)}") from None
        finally:
            response.release_conn()


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Text(str):
    """A body that is not JSON, as text."""


def _json_or_text(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return _Text(data.decode("utf-8", errors="replace"))


def _is_json(payload: Any) -> bool:
    return not isinstance(payload, _Text)


def _excerpt(text: str, limit: int = 100) -> str:
    """The start of a body that is not the API's JSON, on one line and without control characters."""
    cleaned = "".join(character if character.isprintable() else " " for character in text)
    cleaned = " ".join(cleaned.split())
    return cleaned[:limit] + ("..." if len(cleaned) > limit else "")


def _bare_gateway_404(status: int, payload: Any) -> bool:
    return status == 404 and payload == {"message": "Not Found"}


def _reason(error: HTTPError) -> str:
    text = str(getattr(error, "reason", None) or error)
    # urllib3 prefixes the cause with its connection object's repr; the OS's words are the useful part.
    if "[Errno" in text:
        text = text[text.index("[Errno") :]
    return text.rstrip(")")


def _api_error(status: int, payload: Any, headers: dict[str, str]) -> ApiError:
    trace = headers.get("apigw-requestid") or headers.get("x-amzn-requestid")
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        error = payload["error"]
        return ApiError(
            status,
            str(error.get("code") or f"HTTP_{status}"),
            str(error.get("message") or ""),
            error.get("traceId") or trace,
            hint=_hint(status, payload, headers),
        )
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        # The local stack's firing endpoint: the function it ran failed.
        return ApiError(status, f"HTTP_{status}", payload["error"], trace)
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        # The gateway's own answers (no route, no valid token) carry only a message.
        code = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 429: "TOO_MANY_REQUESTS"}.get(
            status, f"HTTP_{status}"
        )
        return ApiError(status, code, payload["message"], trace, hint=_hint(status, payload, headers))
    if payload is None:
        return ApiError(status, f"HTTP_{status}", f"HTTP {status} without a body", trace)
    body = payload if isinstance(payload, _Text) else json.dumps(payload, ensure_ascii=False)
    kind = headers.get("content-type") or "no content type"
    hint = _hint(status, payload, headers) or (
        f"the body ({kind}) is not the report API's JSON: a proxy, or not the report service, answered"
    )
    return ApiError(status, f"HTTP_{status}", _excerpt(body) or f"HTTP {status}", trace, hint=hint)


def _hint(status: int, payload: Any, headers: dict[str, str]) -> str | None:
    if status == 401 and not (isinstance(payload, dict) and "error" in payload):
        return "the gateway refused the token: missing, expired, or not from this stage's issuer; get a new one"
    if status == 429 and headers.get("retry-after"):
        return f"retry after {headers['retry-after']} s"
    return None


def _file_error(status: int, body: bytes) -> ApiError:
    # S3 answers in XML; its Code element says enough (AccessDenied on an expired URL, NoSuchKey).
    text = body.decode("utf-8", errors="replace")
    code = text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in text else f"HTTP_{status}"
    return ApiError(status, code, f"the file store answered HTTP {status} for the download URL", None)
