"""A report read in slices side by side is the report read with one cursor, byte for byte.

The upstream is the sample service over HTTP with `rows_per_day`, whose data, like a real
upstream's, belongs to the days: a narrower period answers exactly that period's records.
"""

import hashlib
import threading

import pytest
from test_generation import JOBS, csv_rows, run_worker, stored_object

from report_export.core.settings import get_settings
from report_export.generation import generator as generation

from conftest import valid_job_request


@pytest.fixture
def concurrency(monkeypatch):
    def set_to(slices: int) -> None:
        monkeypatch.setenv("SOURCE_CONCURRENCY", str(slices))
        get_settings.cache_clear()
        generation.reset()

    return set_to


def export(api, aws, upstream, **request):
    job_id = api.create_job(valid_job_request(**request)).json["id"]
    upstream.requests.clear()  # the create's size check asked for a sample: only the generator's reads count
    run_worker(aws)
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert job["status"] == "succeeded", job
    return job, stored_object(aws, job)[1]


@pytest.mark.parametrize(
    ("job_type", "fmt", "compression", "end_date"),
    [
        ("FEED_INTAKE_EXPORT", "csv", None, "2025-01-31"),  # by day
        ("TELEMETRY_EXPORT", "json", None, "2025-01-09"),
        ("WEIGHVISION_EXPORT", "csv", "gzip", "2025-01-20"),
        ("KPI_FEEDING_EXPORT", "csv", None, "2025-03-02"),  # by week, the last one short
        ("BUFDIR_ACTIVITY_REPORT", "json", "gzip", "2025-02-11"),
    ],
)
def test_sliced_and_sequential_reads_store_the_same_bytes(
    api, aws, upstream, concurrency, job_type, fmt, compression, end_date
):
    upstream.knobs.rows_per_day = 130  # pages of 1000 straddle day boundaries
    request = {"job_type": job_type, "format": fmt, "compression": compression, "end_date": end_date}
    if job_type == "BUFDIR_ACTIVITY_REPORT":
        request.update(farm_id=None, filters=None)

    concurrency(1)
    sequential, sequential_body = export(api, aws, upstream, **request)
    concurrency(8)
    sliced, sliced_body = export(api, aws, upstream, **request)

    assert sliced_body == sequential_body
    assert sliced["sha256"] == sequential["sha256"] == hashlib.sha256(sliced_body).hexdigest()
    assert sliced["row_count"] == sequential["row_count"] > 0
    periods = {(seen.query["start_date"], seen.query["end_date"]) for seen in upstream.requests}
    assert len(periods) > 1, "the sliced export should have asked for narrower periods"
    assert ("2025-01-01", end_date) not in periods


def test_each_day_is_asked_for_once_and_no_more_slices_than_allowed_are_open(api, aws, upstream, concurrency):
    upstream.knobs.rows_per_day = 1500
    upstream.knobs.delay_sec = 0.02
    open_now, most_open, lock = set(), [0], threading.Lock()
    answer = upstream._answer

    def counting_answer(path, query, headers):
        period = query.get("start_date")
        with lock:
            open_now.add(period)
            most_open[0] = max(most_open[0], len(open_now))
        try:
            return answer(path, query, headers)
        finally:
            with lock:
                open_now.discard(period)

    upstream._answer = counting_answer
    try:
        concurrency(3)
        job, body = export(api, aws, upstream, end_date="2025-01-10")
    finally:
        del upstream._answer

    assert job["row_count"] == 15_000 == len(csv_rows(body)) - 1
    first_pages = [seen.query["start_date"] for seen in upstream.requests if "cursor" not in seen.query]
    assert sorted(first_pages) == [f"2025-01-{day:02d}" for day in range(1, 11)]
    assert 1 < most_open[0] <= 3


def test_a_later_slice_refused_fails_the_job_with_its_error_and_stores_nothing(api, aws, upstream, concurrency):
    upstream.knobs.rows_per_day = 200
    answer = upstream._answer

    def refusing_one_day(path, query, headers):
        if query.get("start_date") == "2025-01-15":
            return 400, {}, b'{"message": "no data for that day"}'
        return answer(path, query, headers)

    upstream._answer = refusing_one_day
    try:
        concurrency(8)
        job_id = api.create_job(valid_job_request(end_date="2025-01-20")).json["id"]
        run_worker(aws)
    finally:
        del upstream._answer

    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["error_code"]) == ("failed", "UPSTREAM_REJECTED")
    assert "no data for that day" in job["error_message"]
    assert aws.s3.list_objects_v2(Bucket=aws.bucket).get("KeyCount", 0) == 0
    assert aws.s3.list_multipart_uploads(Bucket=aws.bucket).get("Uploads", []) == []


def test_progress_over_slices_only_moves_forward(api, aws, upstream, concurrency):
    upstream.knobs.rows_per_day = 700
    concurrency(4)
    job_id = api.create_job(valid_job_request(end_date="2025-01-15")).json["id"]
    seen = []
    record_progress = generation.Generator.record_progress

    def recording_progress(self, claimed, changes):
        seen.append(changes["progress_pct"])
        return record_progress(self, claimed, changes)

    original, generation.Generator.record_progress = generation.Generator.record_progress, recording_progress
    try:
        run_worker(aws)
    finally:
        generation.Generator.record_progress = original

    assert api.call("GET", f"{JOBS}/{job_id}").json["row_count"] == 10_500
    assert len(seen) > 5
    assert seen == sorted(seen), seen
    assert seen[-1] == 99 and max(seen[:-1]) <= 98
