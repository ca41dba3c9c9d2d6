"""How large a report may be, and how large one will be, estimated before it is written.

Two limits hold a report: its file (`MAX_OBJECT_BYTES`, where the multipart part plan ends) and its
rows (`MAX_REPORT_ROWS`, a setting: beyond it a report takes hours of invocations, and is better asked
for in parts). A job is refused at create when its estimate passes either; one that grows past them
while it is written fails `REPORT_TOO_LARGE` then.

The estimate is the upstream's own count (`total`) times the bytes one row of a sample page takes in
the job's very format, encoded and compressed by the writers that will write the file. A small sample
compresses less well than a whole file, so for gzip the estimate errs on the large side.

At create (`ReportSizeCheck`) the sample is one page asked of the upstream once, with a short timeout
and no retry. The check can only refuse: an upstream that is slow, down or gives no count lets the
job through (one whose sample records do not fit still gives its count, which refuses too many rows),
and the generator, which reads with retries, reports what is wrong, or applies the same estimate to
its own first page. So a create's answer never waits on the upstream for long, and an upstream
outage never refuses a job that would have been made.

Both refuse with `ReportTooLarge`: the create answers it as a 422, the generator ends the job with its
code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache

from report_export.aws import secrets
from report_export.aws.multipart import MAX_OBJECT_BYTES
from report_export.core.errors import ReportTooLarge
from report_export.core.models.common import Compression
from report_export.core.models.jobs import Job
from report_export.core.observability import logger, metrics
from report_export.core.settings import get_settings
from report_export.generation.compression import GzipCompressor
from report_export.generation.sources import Page, RetryPolicy, UpstreamClient, UpstreamError
from report_export.generation.writers import make_encoder
from report_export.reports import BadRecord, ReportDefinition, definition_for

GIB = 1024**3
# Records in the create's sample: enough for a fair bytes-per-row figure (and gzip ratio), few enough to
# come back in well under a second from any upstream.
SAMPLE_ROWS = 200
# The whole of the create's wait for its sample: the create's answer is worth more than the check.
SAMPLE_CONNECT_TIMEOUT_SEC = 1.0
SAMPLE_READ_TIMEOUT_SEC = 3.0


@dataclass(frozen=True, slots=True)
class SizeEstimate:
    rows: int
    bytes: int | None  # None when the sample cannot be encoded: the row count still holds


@dataclass(frozen=True, slots=True)
class SizeLimits:
    max_rows: int
    max_bytes: int = MAX_OBJECT_BYTES

    def refusal(self, estimate: SizeEstimate) -> str | None:
        """Why a report of this size is not made, or None when it fits."""
        if estimate.rows > self.max_rows:
            return (
                f"The report would have about {estimate.rows:,} rows, more than the {self.max_rows:,} one report "
                "may have: ask for a shorter period or a narrower scope"
            )
        if estimate.bytes is not None and estimate.bytes > self.max_bytes:
            return (
                f"The report's file would be about {estimate.bytes / GIB:,.0f} GiB, larger than the largest the "
                f"service stores ({self.max_bytes // GIB:,} GiB): ask for a shorter period, a narrower scope, "
                "or gzip"
            )
        return None

    def rows_exceeded(self) -> str:
        return (
            f"The report has more than the {self.max_rows:,} rows one report may have: ask for a shorter period "
            "or a narrower scope"
        )

    def bytes_exceeded(self) -> str:
        return (
            f"The report is larger than the largest file the service stores ({self.max_bytes // GIB:,} GiB): ask "
            "for a shorter period or a narrower scope"
        )


def estimate_size(definition: ReportDefinition, job: Job, sample: Page) -> SizeEstimate | None:
    """The whole report's rows and bytes from its first page, or None when the upstream gives no `total`.
    The bytes are None when the sample has no record or one that does not fit the report type (the
    generator says which when it reads it)."""
    if sample.total is None:
        return None
    if sample.total == 0:
        return SizeEstimate(rows=0, bytes=0)
    if not sample.records:
        return SizeEstimate(rows=sample.total, bytes=None)
    try:
        rows = definition.rows(sample.records)
        encoder = make_encoder(job.format, definition.column_names)
        header, body = encoder.header(), encoder.encode(rows)
    except (BadRecord, ValueError, TypeError):
        return SizeEstimate(rows=sample.total, bytes=None)
    if job.compression is Compression.GZIP:
        compressor = GzipCompressor()
        header, body = b"", compressor.compress(header + body) + compressor.flush()
    per_row = len(body) / len(rows)
    return SizeEstimate(rows=sample.total, bytes=len(header) + round(per_row * sample.total))


class ReportSizeCheck:
    def __init__(self, limits: SizeLimits, upstream: UpstreamClient) -> None:
        self._limits = limits
        self._upstream = upstream

    def refuse_too_large(self, job: Job) -> None:
        """ReportTooLarge when the report's estimate passes the limits; otherwise nothing."""
        definition = definition_for(job.job_type)
        started = time.monotonic()
        try:
            sample = self._upstream.first_page(definition, job, limit=SAMPLE_ROWS)
        except UpstreamError as error:
            logger.warning("The report's size could not be checked at create", extra={"reason": str(error)})
            metrics.add_metric(name="SizeCheckSkipped", unit="Count", value=1)
            return
        except Exception:
            # Its own token, say: the check can only refuse, never fail a create.
            logger.exception("The report's size check failed; the job is made without it")
            metrics.add_metric(name="SizeCheckSkipped", unit="Count", value=1)
            return
        estimate = estimate_size(definition, job, sample)
        took_ms = round((time.monotonic() - started) * 1000, 1)
        if estimate is None:
            logger.info("The report's size is not known at create", extra={"ms": took_ms})
            metrics.add_metric(name="SizeCheckSkipped", unit="Count", value=1)
            return
        refusal = self._limits.refusal(estimate)
        logger.info(
            "Report size estimated",
            extra={"rows": estimate.rows, "bytes": estimate.bytes, "ms": took_ms, "refused": refusal is not None},
        )
        if refusal is not None:
            metrics.add_metric(name="JobsRefusedTooLarge", unit="Count", value=1)
            raise ReportTooLarge(refusal)


@cache
def report_size_check() -> ReportSizeCheck:
    """The create's size check, one per cold start (its upstream connections are reused)."""
    settings = get_settings()
    upstream = UpstreamClient(
        settings.upstream_urls,
        token=lambda: secrets.secure_parameter(settings.service_token_parameter),
        retry=RetryPolicy(
            max_attempts=1,
            max_total_wait_s=0.0,
            connect_timeout_s=SAMPLE_CONNECT_TIMEOUT_SEC,
            read_timeout_s=SAMPLE_READ_TIMEOUT_SEC,
        ),
        max_connections=2,
    )
    return ReportSizeCheck(SizeLimits(max_rows=settings.max_report_rows), upstream)
