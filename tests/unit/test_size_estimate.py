"""The size estimate and the limits it is held to."""

import pytest

from local.upstream import UpstreamKnobs, _records
from report_export.aws.multipart import MAX_OBJECT_BYTES
from report_export.core.models.common import Compression, ExportFormat, JobType
from report_export.core.models.jobs import Job
from report_export.generation.compression import GzipCompressor
from report_export.generation.report_size import SizeEstimate, SizeLimits, estimate_size
from report_export.generation.sources import Page
from report_export.generation.writers import make_encoder
from report_export.reports import definition_for

QUERY = {"tenant_id": "tenant-a", "farm_id": "farm-1", "start_date": "2025-01-01", "end_date": "2025-01-31"}


def job(job_type: JobType, fmt: str, compression: str | None) -> Job:
    return Job.model_construct(
        job_type=job_type,
        format=ExportFormat(fmt),
        compression=Compression(compression) if compression else None,
    )


def written_file(job_type: JobType, fmt: str, compression: str | None, records: list) -> bytes:
    definition = definition_for(job_type)
    encoder = make_encoder(ExportFormat(fmt), definition.column_names)
    body = encoder.header() + encoder.encode(definition.rows(records))
    if compression:
        compressor = GzipCompressor()
        body = compressor.compress(body) + compressor.flush()
    return body


@pytest.mark.parametrize("job_type", list(JobType))
@pytest.mark.parametrize(("fmt", "compression"), [("csv", None), ("json", None), ("csv", "gzip"), ("json", "gzip")])
def test_a_sample_that_is_the_whole_report_estimates_its_exact_size(job_type, fmt, compression):
    definition = definition_for(job_type)
    records = _records(definition, QUERY, UpstreamKnobs(rows=150))

    estimate = estimate_size(definition, job(job_type, fmt, compression), Page(records, None, 150, None))

    assert estimate == SizeEstimate(rows=150, bytes=len(written_file(job_type, fmt, compression, records)))


@pytest.mark.parametrize(("fmt", "compression"), [("csv", None), ("json", None), ("csv", "gzip")])
def test_a_sample_of_a_larger_report_estimates_it_within_a_few_percent(fmt, compression):
    definition = definition_for(JobType.TELEMETRY_EXPORT)
    records = _records(definition, QUERY, UpstreamKnobs(rows=20_000))

    estimate = estimate_size(
        definition, job(JobType.TELEMETRY_EXPORT, fmt, compression), Page(records[:200], "200", 20_000, None)
    )

    actual = len(written_file(JobType.TELEMETRY_EXPORT, fmt, compression, records))
    assert estimate is not None and estimate.rows == 20_000
    # A small sample compresses a little less well than the whole file: gzip errs on the large side.
    assert 0.97 * actual <= estimate.bytes <= (1.1 if compression else 1.03) * actual


def test_a_page_without_a_count_gives_no_estimate_and_one_without_fitting_records_gives_rows_only():
    definition = definition_for(JobType.FEED_INTAKE_EXPORT)
    records = _records(definition, QUERY, UpstreamKnobs(rows=10))
    csv_job = job(JobType.FEED_INTAKE_EXPORT, "csv", None)

    assert estimate_size(definition, csv_job, Page(records, None, None, None)) is None
    bad = [*records[:-1], {**records[-1], "recorded_at": "not a time"}]
    rows_only = SizeEstimate(rows=5_000_000_000, bytes=None)
    assert estimate_size(definition, csv_job, Page(bad, None, 5_000_000_000, None)) == rows_only
    assert estimate_size(definition, csv_job, Page(["not an object"], None, 5_000_000_000, None)) == rows_only
    assert estimate_size(definition, csv_job, Page([], "next", 5_000_000_000, None)) == rows_only
    # The count alone refuses a report with too many rows; an unknown size never refuses one.
    limits = SizeLimits(max_rows=1_000_000_000)
    assert "5,000,000,000 rows" in limits.refusal(rows_only)
    assert limits.refusal(SizeEstimate(rows=10, bytes=None)) is None


def test_an_empty_report_is_estimated_empty():
    definition = definition_for(JobType.FEED_INTAKE_EXPORT)

    estimate = estimate_size(definition, job(JobType.FEED_INTAKE_EXPORT, "csv", None), Page([], None, 0, None))

    assert estimate == SizeEstimate(rows=0, bytes=0)


def test_the_limits_refuse_past_either_bound_and_say_which():
    limits = SizeLimits(max_rows=1_000, max_bytes=10 * 1024**3)

    assert limits.refusal(SizeEstimate(rows=1_000, bytes=10 * 1024**3)) is None
    too_many = limits.refusal(SizeEstimate(rows=1_001, bytes=1))
    too_big = limits.refusal(SizeEstimate(rows=1, bytes=10 * 1024**3 + 1))
    assert too_many is not None and "1,001 rows" in too_many and "1,000" in too_many
    assert too_big is not None and "10 GiB" in too_big and "gzip" in too_big


def test_the_largest_file_is_where_the_part_plan_ends():
    assert SizeLimits(max_rows=1).max_bytes == MAX_OBJECT_BYTES
    assert "492 GiB" in SizeLimits(max_rows=1).bytes_exceeded()
