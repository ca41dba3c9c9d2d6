"""A report larger than the service makes is refused at create (422 REPORT_TOO_LARGE, nothing written);
one the create could not size fails REPORT_TOO_LARGE as soon as its own pages show it.

The create sizes a report from one sample page of its upstream (the sample service over HTTP here): the
upstream's count of records, times the bytes a sample row takes in the job's format.
"""

import time

import pytest
from test_continuation import leftovers
from test_generation import JOBS, run_worker
from test_scheduled_exports import EXPORT, fire

from report_export.core.settings import get_settings
from report_export.generation import generator as generation
from report_export.generation.report_size import SAMPLE_ROWS, report_size_check

from conftest import valid_job_request


@pytest.fixture
def max_rows(monkeypatch):
    def set_to(rows: int, **variables: str) -> None:
        monkeypatch.setenv("MAX_REPORT_ROWS", str(rows))
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        report_size_check.cache_clear()
        generation.reset()

    return set_to


def test_a_report_counted_above_the_row_limit_is_refused_at_create_and_writes_nothing(api, aws, upstream, max_rows):
    max_rows(10_000)
    upstream.knobs.rows = 10_001

    refused = api.create_job(valid_job_request(idempotency_key="year-of-feed"))

    assert (refused.status, refused.error_code) == (422, "REPORT_TOO_LARGE")
    message = refused.json["error"]["message"]
    assert "10,001 rows" in message and "10,000" in message and "shorter period" in message
    assert refused.json["error"]["traceId"]
    assert api.call("GET", JOBS).json["items"] == []
    assert aws.queued_messages() == []
    # The key was not taken: once the report fits, the same request makes its job.
    max_rows(20_000)
    made = api.create_job(valid_job_request(idempotency_key="year-of-feed"))
    assert made.status == 201 and made.json["status"] == "queued"


def test_a_report_counted_at_the_row_limit_is_made(api, aws, upstream, max_rows):
    max_rows(10_000)
    upstream.knobs.rows = 10_000

    made = api.create_job(valid_job_request())

    assert made.status == 201


@pytest.mark.parametrize(
    ("fmt", "compression", "status"), [("csv", None, 422), ("json", None, 422), ("csv", "gzip", 201)]
)
def test_a_report_whose_file_would_pass_the_largest_stored_is_refused_in_the_format_asked_for(
    api, aws, upstream, max_rows, fmt, compression, status
):
    max_rows(10_000_000_000)
    upstream.knobs.rows = 6_000_000_000  # ~100 bytes a CSV row: ~560 GiB, past the part plan's ~492 GiB

    answer = api.create_job(valid_job_request(format=fmt, compression=compression))

    assert answer.status == status, answer.body
    if status == 422:
        assert answer.error_code == "REPORT_TOO_LARGE"
        assert "GiB" in answer.json["error"]["message"] and "gzip" in answer.json["error"]["message"]


@pytest.mark.parametrize(
    "page", [{"items": [], "total": 10_001}, {"items": [{"unexpected": "shape"}], "total": 10_001, "nextCursor": "2"}]
)
def test_a_count_above_the_row_limit_refuses_even_when_the_sample_cannot_be_encoded(api, aws, upstream, max_rows, page):
    max_rows(10_000)
    upstream.knobs.raw_page = page

    refused = api.create_job(valid_job_request())

    assert (refused.status, refused.error_code) == (422, "REPORT_TOO_LARGE")
    assert api.call("GET", JOBS).json["items"] == []


def test_the_sample_is_one_small_page_of_the_jobs_own_query(api, aws, upstream):
    api.create_job(valid_job_request(barn_id="barn-7"))

    (sample,) = upstream.requests
    assert sample.path == "/api/v1/feed/intake-records"
    assert sample.query["limit"] == str(SAMPLE_ROWS) and "cursor" not in sample.query
    assert (sample.query["start_date"], sample.query["end_date"]) == ("2025-01-01", "2025-01-31")
    assert (sample.query["barn_id"], sample.query["source"], sample.query["tenant_id"]) == (
        "barn-7",
        "MANUAL",
        "tenant-a",
    )
    assert sample.headers["x-tenant-id"] == "tenant-a"
    assert sample.headers["authorization"] == "Bearer upstream-service-token"


def test_an_idempotent_replay_does_not_ask_the_upstream_again(api, aws, upstream):
    first = api.create_job(valid_job_request(idempotency_key="once"))
    upstream.requests.clear()

    again = api.create_job(valid_job_request(idempotency_key="once"))

    assert (first.status, again.status, again.json["id"]) == (201, 200, first.json["id"])
    assert upstream.requests == []


@pytest.mark.reliability(
    scenario="An upstream that cannot size a report at create",
    injected="no count, a 503, a 400, an answer that is not a page, no URL, a refused connection",
    checked="the create answers 201 and queues the job (the check only refuses what it can count)",
)
@pytest.mark.parametrize(
    "cannot_tell",
    ["no count", "unavailable", "refuses", "not a page", "no upstream", "connection refused"],
)
def test_a_report_the_create_cannot_size_is_made_and_the_generator_judges_it(
    api, aws, upstream, max_rows, monkeypatch, cannot_tell
):
    max_rows(1_000)
    upstream.knobs.rows = 5_000  # would be refused, if the create could tell
    if cannot_tell == "no count":
        upstream.knobs.report_total = False
    elif cannot_tell == "unavailable":
        upstream.knobs.failures = [(503, {"Retry-After": "1"})]
    elif cannot_tell == "refuses":
        upstream.knobs.failures = [(400, {})]
    elif cannot_tell == "not a page":
        upstream.knobs.raw_page = {"unexpected": "shape"}
    elif cannot_tell == "no upstream":
        max_rows(1_000, FEED_SERVICE_URL="")
    else:
        max_rows(1_000, FEED_SERVICE_URL="http://127.0.0.1:9")

    made = api.create_job(valid_job_request())

    assert made.status == 201, made.body
    assert made.json["status"] == "queued"
    assert len(aws.queued_messages()) == 1


@pytest.mark.reliability(
    scenario="A slow upstream at create",
    injected="6 s before the upstream answers the create's sample request",
    checked="the create answers 201 after the check's 3 s read timeout, not after the upstream",
)
def test_a_slow_upstream_delays_the_create_by_the_checks_timeout_at_most(api, aws, upstream, max_rows, measured):
    max_rows(1_000)
    upstream.knobs.rows = 5_000
    upstream.knobs.delay_sec = 6.0

    started = time.monotonic()
    made = api.create_job(valid_job_request())
    took = time.monotonic() - started

    measured["create answered after"] = f"{took:.1f} s (upstream: 6 s)"
    assert made.status == 201
    assert took < 5.0, f"the create waited {took:.1f} s for its sample"


def test_a_report_without_a_count_that_grows_past_the_row_limit_fails_while_written_and_leaves_nothing(
    api, aws, upstream, max_rows
):
    max_rows(2_500)
    upstream.knobs.rows = 5_000
    upstream.knobs.report_total = False  # neither the create nor the first page can size it
    job_id = api.create_job(valid_job_request()).json["id"]

    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["error_code"]) == ("failed", "REPORT_TOO_LARGE"), job
    assert "2,500 rows" in job["error_message"]
    assert leftovers(aws, job_id) == ([], [])


def test_a_job_the_create_did_not_size_fails_on_its_first_page_when_the_count_is_too_large(
    api, aws, upstream, max_rows
):
    max_rows(10_000)
    upstream.knobs.rows = 50_000
    upstream.knobs.failures = [(503, {})]  # the create's sample only: the generator's read retries
    job_id = api.create_job(valid_job_request()).json["id"]
    upstream.requests.clear()

    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["error_code"]) == ("failed", "REPORT_TOO_LARGE"), job
    assert "50,000 rows" in job["error_message"]
    # It stops after its first page, not after all 50 (the read runs a page or so ahead of the writing).
    assert len(upstream.requests) <= 3
    assert leftovers(aws, job_id) == ([], [])


def test_a_scheduled_firing_of_a_report_too_large_makes_its_job_which_fails_with_the_code(api, aws, upstream, max_rows):
    max_rows(10_000)
    upstream.knobs.rows = 50_000
    made = fire(EXPORT)
    assert upstream.requests == [], "a firing is not sized at create"

    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{made['job_id']}").json
    assert (job["status"], job["error_code"]) == ("failed", "REPORT_TOO_LARGE"), job


def test_a_report_read_in_slices_is_held_to_the_row_limit_as_it_is_written(api, aws, upstream, max_rows):
    max_rows(5_000, SOURCE_CONCURRENCY="4")
    upstream.knobs.rows_per_day = 1_000  # 31,000 rows; each slice counts only its own
    upstream.knobs.failures = [(503, {})]  # the create's sample
    job_id = api.create_job(valid_job_request()).json["id"]

    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["error_code"]) == ("failed", "REPORT_TOO_LARGE"), job
    assert "5,000 rows" in job["error_message"]
    assert leftovers(aws, job_id) == ([], [])
