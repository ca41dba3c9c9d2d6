"""A sample upstream service on 127.0.0.1 serving deterministic pages for every report type.

Records are derived from the report definitions' own columns and seeded by tenant, scope and
period, so the same request always returns the same rows. Two ways to size the data:

- `rows`: the request's period holds that many records, spread over it (what most tests use).
  A narrower period is another request with as many rows, so a report read in slices is not
  the report read whole.
- `rows_per_day`: every day holds that many records, seeded by the day itself, as a real
  upstream's data is: any period's records are exactly those of its days, so slices read side
  by side join into the report read whole. Sized for big exports: a page is computed from its
  cursor alone, from a pool of prepared values, in time independent of the report's size.
 Knobs make it fail, throttle, slow
down, serve a bad record or change its data: set in code by tests, or over HTTP for demos
(GET, PUT or DELETE /_knobs on the running service).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson

from local.servers import BurstServer, KeepAliveHandler
from report_export.reports import REPORT_DEFINITIONS, ColumnKind, ReportDefinition

KNOBS_PATH = "/_knobs"
_BY_PATH = {definition.path: definition for definition in REPORT_DEFINITIONS.values()}
_TRICKY_TEXT = ["=SUM(A1:A9)", "+31 6 1234", "-2 kg", "@cmd", "plain, with comma", 'say "hi"', "multi\nline", "ÆØÅ"]


@dataclass
class UpstreamKnobs:
    rows: int = 50
    rows_per_day: int | None = None  # when set, replaces `rows` (see the module's docstring)
    page_size_cap: int = 1000
    data_version: int = 1
    report_total: bool = True
    watermark: str | None = "wm-1"
    failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # (status, headers) served first
    always_fail_with: int | None = None
    bad_record_at: int | None = None
    out_of_order_at: int | None = None
    delay_sec: float = 0.0  # before each page: a slow upstream, to watch progress or cancel mid-run
    raw_page: dict[str, Any] | None = None  # served as every page instead of the data: a malformed or hostile answer

    def updated(self, changes: dict[str, Any]) -> UpstreamKnobs:
        """A copy with the given knobs set (as sent to PUT /_knobs); unknown names are refused."""
        known = {knob.name for knob in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown knobs {unknown}; known: {sorted(known)}")
        values = {**asdict(self), **changes}
        values["failures"] = [(int(status), dict(headers)) for status, headers in values["failures"]]
        return UpstreamKnobs(**values)


@dataclass
class SeenRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class SampleUpstream:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, record_requests: bool = True) -> None:
        self.knobs = UpstreamKnobs()
        self.requests: list[SeenRequest] = []
        # A long-running local stack keeps no request log: it would only grow.
        self._record_requests = record_requests
        self._lock = threading.Lock()
        self._server = BurstServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SampleUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.knobs = UpstreamKnobs()
            self.requests.clear()

    def expected_records(self, definition: ReportDefinition, query: dict[str, str]) -> list[dict[str, Any]]:
        if self.knobs.rows_per_day is not None:
            return _daily_records(definition, query, self.knobs, 0, _daily_total(query, self.knobs))
        return _records(definition, query, self.knobs)

    def _knobs_answer(self, method: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            try:
                if method == "PUT":
                    self.knobs = self.knobs.updated(json.loads(body or b"{}"))
                elif method == "DELETE":
                    self.knobs = UpstreamKnobs()
            except (ValueError, TypeError) as error:
                return 400, {}, json.dumps({"message": str(error)}).encode()
            return 200, {}, json.dumps(asdict(self.knobs)).encode()

    def _answer(self, path: str, query: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            if self._record_requests:
                self.requests.append(SeenRequest(path, query, headers))
            knobs = self.knobs
            if knobs.failures:
                status, extra_headers = knobs.failures.pop(0)
                return status, extra_headers, b'{"message": "try again"}'
        if knobs.always_fail_with is not None:
            return knobs.always_fail_with, {}, b'{"message": "no"}'
        if not headers.get("authorization", "").startswith("Bearer "):
            return 401, {}, b'{"message": "service token required"}'
        definition = _BY_PATH.get(path)
        if definition is None:
            return 404, {}, b'{"message": "no such endpoint"}'
        if knobs.delay_sec:
            time.sleep(knobs.delay_sec)
        if knobs.raw_page is not None:
            return 200, {}, json.dumps(knobs.raw_page).encode()
        offset = int(query.get("cursor", "0") or 0)
        limit = min(int(query.get("limit", "100")), knobs.page_size_cap)
        if knobs.rows_per_day is not None:
            total = _daily_total(query, knobs)
            items = _daily_records(definition, query, knobs, offset, offset + limit)
        else:
            total = knobs.rows
            items = _records(definition, query, knobs, offset, offset + limit)
        next_offset = offset + limit
        body: dict[str, Any] = {"items": items, "nextCursor": str(next_offset) if next_offset < total else None}
        if knobs.report_total:
            body["total"] = total
        if knobs.watermark:
            body["watermark"] = knobs.watermark
        return 200, {}, orjson.dumps(body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(KeepAliveHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                parsed = urlparse(self.path)
                if parsed.path == KNOBS_PATH:
                    self._reply(*upstream._knobs_answer("GET", b""))
                    return
                query = {name: values[-1] for name, values in parse_qs(parsed.query).items()}
                headers = {name.lower(): value for name, value in self.headers.items()}
                self._reply(*upstream._answer(parsed.path, query, headers))

            def do_PUT(self) -> None:  # noqa: N802
                self._change_knobs("PUT")

            def do_DELETE(self) -> None:  # noqa: N802
                self._change_knobs("DELETE")

            def _change_knobs(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if urlparse(self.path).path != KNOBS_PATH:
                    self._reply(404, {}, b'{"message": "no such endpoint"}')
                    return
                self._reply(*upstream._knobs_answer(method, body))

            def _reply(self, status: int, extra_headers: dict[str, str], body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in extra_headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # A client that stopped waiting (its read timed out while `delay_sec` ran): nothing to answer.
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output readable

        return Handler


def _records(
    definition: ReportDefinition, query: dict[str, str], knobs: UpstreamKnobs, first: int = 0, stop: int | None = None
) -> list[dict[str, Any]]:
    """Records first..stop-1 of the report (all of them by default). Each is derived from its own index and
    the query alone, so any page costs the same whatever the report's size or the page's position."""
    scope = "|".join(query.get(name, "") for name in ("tenant_id", "farm_id", "barn_id", "batch_id"))
    start = date.fromisoformat(query.get("start_date", "2025-01-01"))
    end = date.fromisoformat(query.get("end_date", "2025-01-31"))
    seed = hashlib.sha256(f"{definition.job_type}|{scope}|{start}|{end}|{knobs.data_version}".encode()).digest()
    base = int.from_bytes(seed, "big")
    period_s = ((end - start).days + 1) * 86400
    origin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    ordering_column = definition.sort_key[0]
    stop = knobs.rows if stop is None else min(stop, knobs.rows)
    swapped = knobs.out_of_order_at if knobs.out_of_order_at is not None and 0 < knobs.out_of_order_at else None
    records = []
    for position in range(max(first, 0), stop):
        index = position
        if swapped is not None and swapped < knobs.rows and position in (swapped - 1, swapped):
            index = swapped if position == swapped - 1 else swapped - 1
        rng = random.Random(base + index)
        moment = origin + timedelta(seconds=period_s * index // max(knobs.rows, 1))
        record: dict[str, Any] = {}
        for column in definition.columns:
            if column.name == "id":
                record["id"] = f"rec-{index:08d}"
            elif column.name == ordering_column:
                record[column.name] = moment.date().isoformat() if column.kind is ColumnKind.DATE else _iso(moment)
            elif column.name in ("farm_id", "barn_id", "batch_id") and query.get(column.name):
                record[column.name] = query[column.name]
            elif not column.required and rng.random() < 0.2:
                record[column.name] = None
            else:
                record[column.name] = _value(column.kind, column.name, rng, moment)
        if position == knobs.bad_record_at:
            record[definition.columns[-1].name] = {"unexpected": "object"}
            record[definition.sort_key[0]] = "not a date"
        records.append(record)
    return records


def _period(query: dict[str, str]) -> tuple[date, date]:
    return date.fromisoformat(query.get("start_date", "2025-01-01")), date.fromisoformat(
        query.get("end_date", "2025-01-31")
    )


def _daily_total(query: dict[str, str], knobs: UpstreamKnobs) -> int:
    start, end = _period(query)
    return max((end - start).days + 1, 0) * (knobs.rows_per_day or 0)


_POOL_SIZE = 1009  # prime, so that slots do not repeat in step with days or pages


@lru_cache(maxsize=64)
def _value_pool(definition: ReportDefinition, scope: str, data_version: int) -> tuple[dict[str, Any], ...]:
    """Prepared values for every column but the id and the ordering column, drawn once per data set."""
    seed = int.from_bytes(hashlib.sha256(f"{definition.job_type}|{scope}|{data_version}".encode()).digest(), "big")
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    pool = []
    for slot in range(_POOL_SIZE):
        rng = random.Random(seed + slot)
        values: dict[str, Any] = {}
        for column in definition.columns:
            if column.name == "id" or column.name == definition.sort_key[0]:
                continue
            if not column.required and rng.random() < 0.2:
                values[column.name] = None
            else:
                values[column.name] = _value(column.kind, column.name, rng, moment)
        pool.append(values)
    return tuple(pool)


def _daily_records(
    definition: ReportDefinition, query: dict[str, str], knobs: UpstreamKnobs, first: int, stop: int
) -> list[dict[str, Any]]:
    """Records first..stop-1 of the period, `rows_per_day` a day; record k of a day depends on the day and k alone."""
    per_day = knobs.rows_per_day or 1
    start, _ = _period(query)
    stop = min(stop, _daily_total(query, knobs))
    scope_values = {name: query[name] for name in ("farm_id", "barn_id", "batch_id") if query.get(name)}
    scope = "|".join(query.get(name, "") for name in ("tenant_id", "farm_id", "barn_id", "batch_id"))
    pool = _value_pool(definition, scope, knobs.data_version)
    ordering = definition.sort_key[0]
    ordering_is_date = definition.columns[definition.column_names.index(ordering)].kind is ColumnKind.DATE
    scoped = [name for name in scope_values if name in definition.column_names]
    records = []
    day_number = -1
    for position in range(max(first, 0), stop):
        number, k = divmod(position, per_day)
        if number != day_number:
            day_number = number
            day = start + timedelta(days=number)
            day_text = day.isoformat()
            id_prefix = f"rec-{day:%Y%m%d}-"
            slot_base = day.toordinal() * 7919
        record = dict(pool[(slot_base + k) % _POOL_SIZE])
        record["id"] = f"{id_prefix}{k:08d}"
        if ordering_is_date:
            record[ordering] = day_text
        else:
            milliseconds = k * 86_400_000 // per_day
            seconds, millis = divmod(milliseconds, 1000)
            minutes, second = divmod(seconds, 60)
            hour, minute = divmod(minutes, 60)
            record[ordering] = f"{day_text}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"
        for name in scoped:
            record[name] = scope_values[name]
        if position == knobs.bad_record_at:
            record[definition.columns[-1].name] = {"unexpected": "object"}
            record[ordering] = "not a date"
        records.append(record)
    if knobs.out_of_order_at is not None and first < knobs.out_of_order_at < first + len(records):
        at = knobs.out_of_order_at - first
        records[at - 1], records[at] = records[at], records[at - 1]
    return records


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _value(kind: ColumnKind, name: str, rng: random.Random, moment: datetime) -> Any:
    if kind is ColumnKind.STRING:
        if rng.random() < 0.1:
            return rng.choice(_TRICKY_TEXT)
        return f"{name}-{rng.randint(1, 40)}"
    if kind is ColumnKind.INTEGER:
        return rng.randint(0, 25000)
    if kind is ColumnKind.DECIMAL:
        return round(rng.uniform(0, 5000), 3)
    if kind is ColumnKind.DATE:
        return moment.date().isoformat()
    if kind is ColumnKind.DATETIME:
        return _iso(moment + timedelta(seconds=rng.randint(0, 59)))
    return rng.random() < 0.5
