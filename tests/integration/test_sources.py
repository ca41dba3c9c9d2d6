"""The upstream client against a real HTTP server on 127.0.0.1."""

from datetime import date

import pytest

from report_export.core.models.common import JobStatus, JobType, now_utc
from report_export.core.models.jobs import Job
from report_export.generation.sources import (
    RetryPolicy,
    UpstreamBadData,
    UpstreamClient,
    UpstreamRejected,
    UpstreamUnavailable,
)
from report_export.reports import definition_for

from support.upstream import SampleUpstream


@pytest.fixture(scope="module")
def upstream():
    server = SampleUpstream().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh_knobs(upstream):
    upstream.reset()


def a_job(job_type=JobType.FEED_INTAKE_EXPORT, **fields):
    moment = now_utc()
    return Job(
        id="019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f",
        tenant_id="tenant-a",
        requested_by="u1",
        job_type=job_type,
        format="csv",
        farm_id="farm-1",
        start_date=date(2025, 1, 1),
        end_date=date(2025, 1, 31),
        filters={"source": "MANUAL", "houses": ["h1", "h2"]},
        status=JobStatus.RUNNING,
        created_at=moment,
        updated_at=moment,
        **fields,
    )


class SleepRecorder:
    def __init__(self):
        self.waits = []

    def __call__(self, seconds):
        self.waits.append(seconds)


def client_for(upstream, sleep=None, **policy):
    return UpstreamClient(
        {"feed": upstream.url, "telemetry": upstream.url},
        token=lambda: "service-token",
        retry=RetryPolicy(**policy),
        sleep=sleep or SleepRecorder(),
        jitter=lambda low, high: high,
    )


def test_pages_follow_the_cursor_and_send_scope_period_filters_and_token(upstream):
    upstream.knobs.rows = 2500
    definition = definition_for(JobType.FEED_INTAKE_EXPORT)

    pages = list(client_for(upstream).pages(definition, a_job()))

    assert [len(page.records) for page in pages] == [1000, 1000, 500]
    assert all(page.total == 2500 and page.watermark == "wm-1" for page in pages)
    first = upstream.requests[0]
    assert first.path == "/api/v1/feed/intake-records"
    assert first.query == {
        "tenant_id": "tenant-a",
        "farm_id": "farm-1",
        "start_date": "2025-01-01",
        "end_date": "2025-01-31",
        "houses": "h1,h2",
        "source": "MANUAL",
        "sort": "recorded_at,id",
        "limit": "1000",
    }
    assert first.headers["authorization"] == "Bearer service-token"
    assert first.headers["x-tenant-id"] == "tenant-a"
    assert [request.query.get("cursor") for request in upstream.requests] == [None, "1000", "2000"]


@pytest.mark.reliability(
    scenario="An upstream 503 storm",
    injected="503, 503, 502 before the pages",
    checked="retried with growing backoff, then the pages are read",
)
def test_503s_are_retried_with_growing_backoff_then_succeed(upstream):
    upstream.knobs.failures = [(503, {}), (503, {}), (502, {})]
    sleep = SleepRecorder()

    pages = list(
        client_for(upstream, sleep, base_delay_s=0.5).pages(definition_for(JobType.FEED_INTAKE_EXPORT), a_job())
    )

    assert len(pages[0].records) == 50
    assert sleep.waits == [0.5, 1.0, 2.0]


def test_retry_after_is_honoured(upstream):
    upstream.knobs.failures = [(429, {"Retry-After": "3"})]
    sleep = SleepRecorder()

    list(client_for(upstream, sleep).pages(definition_for(JobType.FEED_INTAKE_EXPORT), a_job()))

    assert sleep.waits == [3.0]


def test_an_upstream_down_for_good_is_unavailable_after_bounded_attempts(upstream):
    upstream.knobs.always_fail_with = 503
    sleep = SleepRecorder()

    with pytest.raises(UpstreamUnavailable, match="gave up after 4 attempts") as raised:
        list(client_for(upstream, sleep, max_attempts=4).pages(definition_for(JobType.FEED_INTAKE_EXPORT), a_job()))

    assert raised.value.code == "UPSTREAM_UNAVAILABLE"
    assert len(upstream.requests) == 4
    assert len(sleep.waits) == 3


@pytest.mark.reliability(
    scenario="An upstream that keeps failing",
    injected="503 without end, 50 attempts allowed",
    checked="the total wait stays within its bound (10 s); UPSTREAM_UNAVAILABLE",
)
def test_the_total_wait_is_bounded(upstream):
    upstream.knobs.always_fail_with = 503
    sleep = SleepRecorder()

    with pytest.raises(UpstreamUnavailable):
        list(
            client_for(upstream, sleep, max_attempts=50, max_total_wait_s=10).pages(
                definition_for(JobType.FEED_INTAKE_EXPORT), a_job()
            )
        )

    assert sum(sleep.waits) <= 10


@pytest.mark.reliability(
    scenario="An upstream that refuses connections",
    injected="nothing listening at the service's URL",
    checked="UPSTREAM_UNAVAILABLE after bounded attempts",
)
def test_a_refused_connection_is_unavailable(upstream):
    dead = UpstreamClient(
        {"feed": "http://127.0.0.1:9"}, token=lambda: "t", retry=RetryPolicy(max_attempts=2), sleep=lambda s: None
    )

    with pytest.raises(UpstreamUnavailable, match="NewConnectionError|MaxRetryError|ConnectionError"):
        list(dead.pages(definition_for(JobType.FEED_INTAKE_EXPORT), a_job()))


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_4xx_is_rejected_without_retry(upstream, status):
    upstream.knobs.always_fail_with = status

    with pytest.raises(UpstreamRejected, match=f"HTTP {status}") as raised:
        list(client_for(upstream).pages(definition_for(JobType.FEED_INTAKE_EXPORT), a_job()))

    assert raised.value.code == "UPSTREAM_REJECTED"
    assert len(upstream.requests) == 1


def test_a_service_without_a_configured_url_is_unavailable(upstream):
    with pytest.raises(UpstreamUnavailable, match="weighvision"):
        list(client_for(upstream).pages(definition_for(JobType.WEIGHVISION_EXPORT), a_job()))


@pytest.mark.reliability(
    scenario="A malformed page",
    injected="a page without the items it should carry",
    checked="a clear bad-data error",
)
def test_a_page_that_is_not_a_page_is_bad_data(upstream):
    client = client_for(upstream)
    upstream.knobs.raw_page = {"records": []}

    with pytest.raises(UpstreamBadData) as raised:
        list(client.pages(definition_for(JobType.FEED_INTAKE_EXPORT), a_job()))

    assert raised.value.code == "UPSTREAM_BAD_DATA"


@pytest.mark.reliability(
    scenario="A cursor that repeats",
    injected="the upstream answering the same next cursor again",
    checked="bad data, not an endless loop",
)
def test_a_cursor_that_repeats_is_bad_data_not_an_endless_loop(upstream):
    client = client_for(upstream)
    upstream.knobs.raw_page = {"items": [], "nextCursor": "same"}

    with pytest.raises(UpstreamBadData, match="already returned"):
        list(client.pages(definition_for(JobType.FEED_INTAKE_EXPORT), a_job()))
