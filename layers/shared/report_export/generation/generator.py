"""Turning a queued job into a report file: claim, stream, hand over to the state machine.

Rows flow page by page from the upstream through normalisation and an order check into the
encoder, optional gzip, and S3 multipart parts, so memory stays flat whatever the row count.
The job item is the source of truth throughout: every write is conditional on the attempt
that claimed the job, a cancel is noticed at each checkpoint, and no exception leaves a job
running (it is released for a retry, or failed on the last allowed delivery). How the job ends
is an outcome handed to the one module that ends jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import cache
from typing import Any

from report_export.aws import clients, secrets
from report_export.aws.dynamo.codecs import StoredJob
from report_export.aws.dynamo.jobs import JobRepository
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.s3 import MultipartUpload
from report_export.core.history import SERVICE_ACTOR
from report_export.core.models.common import Compression, JobStatus, format_timestamp, now_utc
from report_export.core.models.jobs import GenerateJobMessage, Job
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings, get_settings
from report_export.generation.handover import HandOver, ReportFile, build_hand_over
from report_export.generation.progress import Progress
from report_export.generation.slices import report_pages
from report_export.generation.sources import Page, RetryPolicy, UpstreamBadData, UpstreamClient, UpstreamError
from report_export.generation.uploads import abort_abandoned_uploads, object_key
from report_export.generation.watch import CancelWatch, JobCancelled
from report_export.generation.writers import GzipCompressor, RowEncoder, make_encoder, mime_type
from report_export.jobs.ending import Cancelled, Failed, Guard, JobEnding, job_ending
from report_export.reexports.comparison import StoredFileComparer
from report_export.reports import BadRecord, ReportDefinition, definition_for

_UNEXPECTED = Failed("INTERNAL", "The report could not be generated")


class LostClaim(Exception):
    """Another attempt owns the job now (or it changed underneath us); this one stops quietly."""


def file_name_for(job: Job, definition: ReportDefinition, extension: str) -> str:
    """Built from the type and period only: never from user text, so it is safe in keys and headers."""
    period = f"_{job.start_date.isoformat()}_{job.end_date.isoformat()}" if job.start_date and job.end_date else ""
    name = f"{definition.job_type.value.lower()}{period}{extension}"
    return name + ".gz" if job.compression is Compression.GZIP else name


def encode_pages(
    definition: ReportDefinition,
    pages: Iterable[Page],
    encoder: RowEncoder,
    write: Callable[[bytes], None],
    on_page: Callable[[int, int | None], None],
    *,
    compressor: GzipCompressor | None = None,
) -> tuple[int, str | None]:
    """Writes the whole file body (header, rows, gzip trailer) and returns (rows, last watermark).

    Kept apart from jobs and S3 so that bench/bench_generation.py times this very loop.
    `on_page(rows, total)` runs after each page is written: the caller's checkpoint for
    progress, the lease and cancels.
    """

    def emit(chunk: bytes) -> None:
        write(compressor.compress(chunk) if compressor else chunk)

    rows = 0
    previous: tuple[Any, ...] | None = None
    watermark: str | None = None
    emit(encoder.header())
    for page in pages:
        try:
            batch = definition.rows(page.records)
        except BadRecord as problem:
            raise UpstreamBadData(f"record {rows + (problem.position or 0) + 1}: {problem}") from None
        misplaced = definition.first_out_of_order(batch, previous)
        if misplaced is not None:
            raise UpstreamBadData(
                f"record {rows + misplaced + 1} is out of order or repeated "
                f"(the report is sorted by {', '.join(definition.sort_key)})"
            )
        if batch:
            previous = definition.sort_value(batch[-1])
        emit(encoder.encode(batch))
        rows += len(batch)
        watermark = page.watermark or watermark
        on_page(rows, page.total)
    if compressor:
        write(compressor.flush())
    return rows, watermark


class Generator:
    def __init__(
        self,
        settings: Settings,
        jobs: JobRepository,
        ending: JobEnding,
        upstream: UpstreamClient,
        s3: Any,
        hand_over: HandOver,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._ending = ending
        self._upstream = upstream
        self._s3 = s3
        self._hand_over = hand_over
        self._clock = clock

    def generate(self, message: GenerateJobMessage, *, receive_count: int) -> None:
        """Produce the report for one wake-up message. Raises only when the message should be retried."""
        logger.append_keys(tenant_id=message.tenant_id, job_id=message.job_id)
        now = now_utc()
        claimed = self._jobs.claim(
            message.tenant_id,
            message.job_id,
            now=format_timestamp(now),
            lease_until=format_timestamp(now + timedelta(seconds=self._settings.lease_seconds)),
        )
        if claimed is None:
            logger.info("Nothing to do: the job is not waiting for generation")
            return
        logger.append_keys(attempt=claimed.attempt)
        logger.info("Generation started", extra={"job_type": claimed.job.job_type.value})
        self._ending.started(claimed)
        if claimed.attempt > 1:
            # An attempt whose process was killed mid-file left its upload open: this attempt owns the job now.
            abort_abandoned_uploads(
                self._s3, bucket=self._settings.reports_bucket, job=claimed.job, keep_attempt=claimed.attempt
            )
        try:
            # The hand-over is inside: a file the state machine never heard of must not leave the job running.
            self._hand_over.succeeded(claimed, self._produce(claimed))
        except JobCancelled:
            self._end_cancelled(claimed)
        except LostClaim:
            logger.warning(
                "The job is no longer this attempt's (another attempt took it over, or it was ended); stopping"
            )
        except UpstreamError as error:
            # A cancel asked for before the failure is what the client said last: the job ends cancelled.
            if self._cancel_requested(claimed):
                self._end_cancelled(claimed)
            else:
                self._hand_over.failed(claimed, Failed(error.code, str(error)))
        except Exception:
            logger.exception("Generation failed unexpectedly")
            if self._cancel_requested(claimed):
                self._end_cancelled(claimed)
                return
            if receive_count < self._settings.max_receive_count:
                self._release(claimed)
                raise
            self._fail_on_last_delivery(claimed)

    def checkpoint(self, claimed: StoredJob, changes: dict[str, Any]) -> StoredJob:
        """Progress written under this attempt, with the lease extended; raises when it should stop."""
        lease_until = now_utc() + timedelta(seconds=self._settings.lease_seconds)
        try:
            current = self._jobs.update_attempt(
                claimed,
                {**changes, "lease_expires_at": format_timestamp(lease_until), "updated_at": _now()},
            )
        except StaleWrite:
            raise LostClaim() from None
        if current.job.cancel_requested:
            raise JobCancelled()
        return current

    def _produce(self, claimed: StoredJob) -> ReportFile:
        job = claimed.job
        definition = definition_for(job.job_type)
        encoder = make_encoder(job.format, definition.column_names)
        compressor = GzipCompressor() if job.compression is Compression.GZIP else None
        file_name = file_name_for(job, definition, encoder.file_extension)
        content_type = mime_type(job.format, gzip=compressor is not None)
        progress = Progress(
            claimed, self.checkpoint, interval_seconds=self._settings.progress_interval_seconds, clock=self._clock
        )
        upload = MultipartUpload(
            self._s3,
            bucket=self._settings.reports_bucket,
            key=object_key(job, claimed.attempt, file_name),
            content_type=content_type,
            content_disposition=f'attachment; filename="{file_name}"',
        )
        with upload:
            watch = CancelWatch(
                lambda: self._cancel_requested(claimed), step_seconds=self._settings.cancel_step_seconds
            )
            rows, watermark = encode_pages(
                definition,
                watch.items(
                    report_pages(self._upstream, definition, job, concurrency=self._settings.source_concurrency)
                ),
                encoder,
                upload.write,
                progress.page_done,
                compressor=compressor,
            )
            progress.finishing(rows)
            stored = upload.complete()
        metrics.add_metric(name="RowsWritten", unit="Count", value=rows)
        return ReportFile(
            stored=stored, file_name=file_name, mime_type=content_type, row_count=rows, watermark=watermark
        )

    def _cancel_requested(self, claimed: StoredJob) -> bool:
        try:
            current = self._jobs.get(claimed.job.tenant_id, claimed.job.id, consistent=True)
        except Exception:
            logger.warning("Could not read the job to look for a cancel", exc_info=True)
            return False
        return current is not None and current.job.cancel_requested

    def _end_cancelled(self, claimed: StoredJob) -> None:
        ended = self._ending.end(
            claimed, Cancelled(by=SERVICE_ACTOR), guard=Guard.ATTEMPT, context={"while": "running"}
        )
        if ended is None:
            return
        logger.info("Generation cancelled on request; the upload was aborted")
        metrics.add_metric(name="JobsCancelledWhileRunning", unit="Count", value=1)

    def _fail_on_last_delivery(self, claimed: StoredJob) -> None:
        try:
            self._hand_over.failed(claimed, _UNEXPECTED)
        except Exception:
            # Without the state machine the failure cannot be announced, but the job must still end.
            logger.exception("The failure could not be handed over; marking the job failed directly")
            self._ending.end(claimed, _UNEXPECTED, guard=Guard.ATTEMPT)

    def _release(self, claimed: StoredJob) -> None:
        """Back to queued, so the redelivered message can claim it again."""
        try:
            self._jobs.update_attempt(
                claimed,
                {"status": JobStatus.QUEUED, "phase": None, "progress_pct": 0, "updated_at": _now()},
                remove=("lease_expires_at",),
            )
        except StaleWrite:
            pass


def _now() -> str:
    return format_timestamp(now_utc())


@cache
def upstream_client() -> UpstreamClient:
    """The upstream services' client, one per cold start (its connection pool is reused)."""
    settings = get_settings()
    return UpstreamClient(
        settings.upstream_urls,
        token=lambda: secrets.secure_parameter(settings.service_token_parameter),
        retry=RetryPolicy(
            max_attempts=settings.upstream_max_attempts,
            base_delay_s=settings.upstream_backoff_base_seconds,
            max_total_wait_s=settings.upstream_max_wait_seconds,
        ),
        max_connections=max(4, settings.source_concurrency),
    )


@cache
def generator() -> Generator:
    settings = get_settings()
    table = Table(clients.dynamodb(), settings.table_name)
    ending = job_ending(settings, table, comparer=StoredFileComparer(clients.s3(), settings.reports_bucket))
    hand_over = build_hand_over(settings, ending)
    return Generator(settings, JobRepository(table), ending, upstream_client(), clients.s3(), hand_over)


def reset() -> None:
    generator.cache_clear()
    upstream_client.cache_clear()
    secrets.reset()
