"""Reading report rows from the upstream services, page by page (`items` + `nextCursor`).

One client per cold start keeps connections alive between pages and jobs. Transient failures
(connection errors, timeouts, 429, 5xx) are retried with exponential backoff and full jitter,
honouring Retry-After, within a bounded total wait; what is still failing then, or what the
upstream refuses (4xx), ends the job with a stable error code.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import orjson
import urllib3

from report_export.core.models.jobs import Job
from report_export.reports.definition import ReportDefinition

PAGE_SIZE = 1000
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_ERROR_DETAIL = 200


class UpstreamError(Exception):
    code = "UPSTREAM_ERROR"


class UpstreamUnavailable(UpstreamError):
    code = "UPSTREAM_UNAVAILABLE"


class UpstreamRejected(UpstreamError):
    code = "UPSTREAM_REJECTED"


class UpstreamBadData(UpstreamError):
    code = "UPSTREAM_BAD_DATA"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    # The whole wait for one request: a Lambda has minutes, not hours, and a job that cannot
    # get its data should fail with a clear reason rather than time out.
    max_total_wait_s: float = 45.0
    connect_timeout_s: float = 3.05
    read_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Page:
    records: list[Any]
    next_cursor: str | None
    total: int | None  # how many records the whole result has, when the upstream says
    watermark: str | None  # the upstream's data version, when it gives one
    slice: int = 0  # which slice of the period it belongs to, when the period is read in slices


class UpstreamClient:
    def __init__(
        self,
        base_urls: Mapping[str, str],
        token: Callable[[], str],
        *,
        retry: RetryPolicy | None = None,
        pool: urllib3.PoolManager | None = None,
        max_connections: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._base_urls = dict(base_urls)
        self._token = token
        self._retry = retry or RetryPolicy()
        # One connection per slice read at once: a smaller pool would open and drop one per page.
        self._pool = pool or urllib3.PoolManager(num_pools=8, maxsize=max_connections)
        self._sleep = sleep
        self._jitter = jitter

    def pages(
        self,
        definition: ReportDefinition,
        job: Job,
        period: tuple[date, date] | None = None,
        *,
        cursor: str | None = None,
    ) -> Iterator[Page]:
        """The report's records page by page; `period` narrows the job's period to one slice of it, and
        `cursor` starts the read where an earlier one stopped (a page's next_cursor)."""
        url, query = self._request(definition, job, period, limit=PAGE_SIZE)
        seen_cursors: set[str] = set()
        while True:
            page_query = {**query, "cursor": cursor} if cursor else query
            page = parse_page(self._get_json(url, page_query, tenant_id=job.tenant_id))
            yield page
            if page.next_cursor is None:
                return
            if page.next_cursor in seen_cursors:
                raise UpstreamBadData("the upstream returned a cursor it had already returned")
            seen_cursors.add(page.next_cursor)
            cursor = page.next_cursor

    def first_page(self, definition: ReportDefinition, job: Job, *, limit: int) -> Page:
        """The report's first `limit` records (or fewer) and what the upstream says of the whole: a sample."""
        url, query = self._request(definition, job, None, limit=limit)
        return parse_page(self._get_json(url, query, tenant_id=job.tenant_id))

    def _request(
        self, definition: ReportDefinition, job: Job, period: tuple[date, date] | None, *, limit: int
    ) -> tuple[str, dict[str, str]]:
        base_url = self._base_urls.get(definition.service)
        if not base_url:
            raise UpstreamUnavailable(f"no upstream is configured for the {definition.service} service")
        query = {**definition.upstream_query(job), "limit": str(limit)}
        if period is not None:
            query["start_date"], query["end_date"] = period[0].isoformat(), period[1].isoformat()
        return base_url.rstrip("/") + definition.path, query

    def _get_json(self, url: str, query: Mapping[str, str], *, tenant_id: str) -> Any:
        policy = self._retry
        full_url = f"{url}?{urlencode(query)}"
        waited = 0.0
        for attempt in range(1, policy.max_attempts + 1):
            failure: str
            retry_after: float | None = None
            try:
                response = self._pool.request(
                    "GET",
                    full_url,
                    headers={
                        "Authorization": f"Bearer {self._token()}",
                        "Accept": "application/json",
                        "X-Tenant-Id": tenant_id,
                    },
                    timeout=urllib3.Timeout(connect=policy.connect_timeout_s, read=policy.read_timeout_s),
                    retries=False,
                    redirect=False,
                )
            except urllib3.exceptions.HTTPError as error:
                failure = f"{type(error).__name__} talking to the upstream"
            else:
                if 200 <= response.status < 300:
                    try:
                        return orjson.loads(response.data)
                    except orjson.JSONDecodeError:
                        raise UpstreamBadData("the upstream answered with something that is not JSON") from None
                if response.status not in _RETRYABLE_STATUSES:
                    raise UpstreamRejected(
                        f"the upstream refused the request with HTTP {response.status}: {_detail(response.data)}"
                    )
                failure = f"the upstream answered HTTP {response.status}"
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if attempt == policy.max_attempts:
                break
            backoff = min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1))
            delay = retry_after if retry_after is not None else self._jitter(0, backoff)
            if waited + delay > policy.max_total_wait_s:
                break
            self._sleep(delay)
            waited += delay
        raise UpstreamUnavailable(f"{failure}; gave up after {attempt} attempts and {waited:.1f} s of waiting")


def parse_page(body: Any) -> Page:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise UpstreamBadData("an upstream page has no items list")
    next_cursor = body.get("nextCursor")
    if next_cursor is not None and (not isinstance(next_cursor, str) or not next_cursor):
        raise UpstreamBadData("an upstream page has an invalid nextCursor")
    total = body.get("total")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        total = None  # a progress hint only: a bad one is ignored, not fatal
    watermark = body.get("watermark")
    return Page(body["items"], next_cursor, total, watermark if isinstance(watermark, str) else None)


def _retry_after_seconds(header: str | None) -> float | None:
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _detail(data: bytes) -> str:
    text = data[:_MAX_ERROR_DETAIL].decode("utf-8", "replace")
    return " ".join(text.split()) or "no detail"
