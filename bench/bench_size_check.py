"""The size check at create: how close its estimate comes to the file, and what it adds to a create.

A create asks the report's upstream for one sample page (200 records) and estimates the whole file
from the upstream's count and the bytes a sample row takes in the job's format. This prints:

- per report type and format, the estimate from 200 rows against the size of the file actually
  written from all the rows (the same writers, the same gzip stage): the ratio, and its floor and
  ceiling over every case;
- the check's own time, p50 and p99 over repeated creates, against the sample upstream on this
  machine over HTTP: the sample request, its JSON, the encoding of 200 rows (a real upstream's
  network and query time come on top).

    .venv/bin/python bench/bench_size_check.py            # 100,000-row files, 300 checks
    .venv/bin/python bench/bench_size_check.py --short    # 5,000-row files, 30 checks (CI)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # a log line per check would drown the figures

from local.upstream import SampleUpstream, UpstreamKnobs, _records  # noqa: E402
from report_export.core.models.common import Compression, ExportFormat, JobType  # noqa: E402
from report_export.core.models.jobs import Job  # noqa: E402
from report_export.generation.compression import GzipCompressor  # noqa: E402
from report_export.generation.report_size import (  # noqa: E402
    SAMPLE_ROWS,
    ReportSizeCheck,
    SizeLimits,
    estimate_size,
)
from report_export.generation.sources import Page, RetryPolicy, UpstreamClient  # noqa: E402
from report_export.generation.writers import make_encoder  # noqa: E402
from report_export.reports import definition_for  # noqa: E402

QUERY = {"tenant_id": "tenant-a", "farm_id": "farm-1", "start_date": "2025-01-01", "end_date": "2025-01-31"}
FORMATS = [("csv", None), ("json", None), ("csv", "gzip"), ("json", "gzip")]


def job(job_type: JobType, fmt: str, compression: str | None, **fields: object) -> Job:
    return Job.model_construct(
        job_type=job_type,
        format=ExportFormat(fmt),
        compression=Compression(compression) if compression else None,
        **fields,
    )


def file_size(job_type: JobType, fmt: str, compression: str | None, records: list) -> int:
    definition = definition_for(job_type)
    encoder = make_encoder(ExportFormat(fmt), definition.column_names)
    body = encoder.header() + encoder.encode(definition.rows(records))
    if compression:
        compressor = GzipCompressor()
        body = compressor.compress(body) + compressor.flush()
    return len(body)


def accuracy(rows: int) -> list[float]:
    print(f"estimate from {SAMPLE_ROWS} rows against the written file of {rows:,} rows")
    print(f"{'report type':<24}{'format':<12}{'file MB':>10}{'estimate MB':>13}{'ratio':>8}")
    ratios = []
    for job_type in JobType:
        definition = definition_for(job_type)
        records = _records(definition, QUERY, UpstreamKnobs(rows=rows))
        for fmt, compression in FORMATS:
            actual = file_size(job_type, fmt, compression, records)
            sample = Page(records[:SAMPLE_ROWS], str(SAMPLE_ROWS), rows, None)
            estimate = estimate_size(definition, job(job_type, fmt, compression), sample)
            assert estimate is not None
            ratio = estimate.bytes / actual
            ratios.append(ratio)
            label = fmt + (".gz" if compression else "")
            print(f"{job_type.value:<24}{label:<12}{actual / 1e6:>10.2f}{estimate.bytes / 1e6:>13.2f}{ratio:>8.3f}")
    print(f"ratio over every case: {min(ratios):.3f} to {max(ratios):.3f}")
    return ratios


def check_time(checks: int) -> None:
    upstream = SampleUpstream(record_requests=False).start()
    try:
        upstream.knobs.rows = 1_000_000
        client = UpstreamClient(
            dict.fromkeys(("feed", "telemetry", "weighvision", "activity"), upstream.url),
            token=lambda: "bench-token",
            retry=RetryPolicy(max_attempts=1, max_total_wait_s=0.0, connect_timeout_s=1.0, read_timeout_s=3.0),
        )
        check = ReportSizeCheck(SizeLimits(max_rows=10**10), client)
        report = job(
            JobType.TELEMETRY_EXPORT,
            "csv",
            None,
            tenant_id="tenant-a",
            farm_id="farm-1",
            start_date=date(2025, 1, 1),
            end_date=date(2025, 12, 31),
        )
        check.refuse_too_large(report)  # the first one opens the connection
        seconds = []
        for _ in range(checks):
            started = time.perf_counter()
            check.refuse_too_large(report)
            seconds.append(time.perf_counter() - started)
    finally:
        upstream.stop()
    seconds.sort()
    p99 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))]
    print(
        f"size check per create ({checks} checks, {SAMPLE_ROWS}-record sample, local sample upstream): "
        f"p50 {statistics.median(seconds) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="small sizes, to prove the benchmark works")
    arguments = parser.parse_args()
    ratios = accuracy(5_000 if arguments.short else 100_000)
    check_time(30 if arguments.short else 300)
    if not all(0.9 < ratio < 1.2 for ratio in ratios):
        sys.exit("an estimate is more than 10% under or 20% over its file")


if __name__ == "__main__":
    main()
