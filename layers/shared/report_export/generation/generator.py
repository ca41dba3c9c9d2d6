"""Turning a queued job into a report file: claim, stream, hand over to the state machine.

Rows flow page by page from the upstream through normalisation and an order check into the
encoder, optional gzip, and S3 multipart parts, so memory stays flat whatever the row count.
The job item is the source of truth throughout: every write is conditional on the attempt
that claimed the job, a cancel is noticed at each checkpoint, and no exception leaves a job
running (it is released for a retry, or failed on the last allowed delivery). How the job ends
is an outcome handed to the one module that ends jobs. A file that outgrows the invocation's time
is left at a checkpoint for the next invocation, which goes on with it (see `continuation`).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any

from report_export.aws import clients, secrets
from report_export.aws.dynamo.codecs import StoredJob
from report_export.aws.dynamo.jobs import JobRepository
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.multipart import MultipartUpload, ObjectTooLarge
from report_export.aws.sqs import GenerateQueue
from report_export.core.errors import ReportTooLarge
from report_export.core.history import SERVICE_ACTOR
from report_export.core.models.common import Compression, JobStatus, format_timestamp, now_utc
from report_export.core.models.jobs import CONTINUING, GenerateJobMessage, Job
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings, get_settings
from report_export.generation.compression import GzipCompressor
from report_export.generation.continuation import Checkpoint, Continuation
from report_export.generation.encoding import StopWriting, Written, encode_pages
from report_export.generation.handover import HandOver, ReportFile, build_hand_over
from report_export.generation.progress import LostClaim, Progress
from report_export.generation.report_size import SizeLimits, estimate_size
from report_export.generation.slices import ReadPosition, first_position, report_pages, slice_count
from report_export.generation.sources import Page, RetryPolicy, UpstreamClient, UpstreamError
from report_export.generation.uploads import (
    abort_abandoned_uploads,
    discard_unfinished_file,
    forget_checkpoints,
    object_key,
)
from report_export.generation.watch import CancelWatch, JobCancelled
from report_export.generation.writers import make_encoder, mime_type
from report_export.jobs.ending import Cancelled, Failed, Guard, JobEnding, job_ending
from report_export.reexports.comparison import StoredFileComparer
from report_export.reports import ReportDefinition, definition_for

_UNEXPECTED = Failed("INTERNAL", "The report could not be generated")


def file_name_for(job: Job, definition: ReportDefinition, extension: str) -> str:
    """Built from the type and period only: never from user text, so it is safe in keys and headers."""
    period = f"_{job.start_date.isoformat()}_{job.end_date.isoformat()}" if job.start_date and job.end_date else ""
    name = f"{definition.job_type.value.lower()}{period}{extension}"
    return name + ".gz" if job.compression is Compression.GZIP else name


class Generator:
    def __init__(
        self,
        settings: Settings,
        jobs: JobRepository,
        ending: JobEnding,
        upstream: UpstreamClient,
        s3: Any,
        hand_over: HandOver,
        queue: GenerateQueue,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._jobs = jobs
        self._ending = ending
        self._upstream = upstream
        self._s3 = s3
        self._hand_over = hand_over
        self._continuation = Continuation(settings, jobs, s3, queue)
        self._limits = SizeLimits(max_rows=settings.max_report_rows)
        self._clock = clock

    def generate(
        self, message: GenerateJobMessage, *, receive_count: int, time_left: Callable[[], float] | None = None
    ) -> None:
        """Produce the report for one wake-up message, or as much of it as this invocation's time allows (the
        next invocation goes on from a checkpoint). Raises only when the message should be retried.

        `time_left` gives the seconds the invocation has left (Lambda's context).
        """
        logger.append_keys(tenant_id=message.tenant_id, job_id=message.job_id)
        now = now_utc()
        moment, lease_until = (
            format_timestamp(now),
            format_timestamp(now + timedelta(seconds=self._settings.lease_seconds)),
        )
        claimed = self._jobs.claim(message.tenant_id, message.job_id, now=moment, lease_until=lease_until)
        if claimed is None:
            claimed = self._jobs.resume(message.tenant_id, message.job_id, now=moment, lease_until=lease_until)
        if claimed is None:
            logger.info("Nothing to do: the job is not waiting for generation")
            return
        started = self._clock()
        deadline = started + self._continuation.reading_seconds(time_left)
        logger.append_keys(attempt=claimed.attempt)
        logger.info(
            "Generation started" if claimed.checkpoint is None else "Generation goes on from a checkpoint",
            extra={"job_type": claimed.job.job_type.value},
        )
        self._ending.started(claimed)
        if claimed.job.cancel_requested:  # asked for between two invocations
            self._end_cancelled(claimed)
            return
        try:
            checkpoint = self._continuation.checkpoint_of(claimed)
            if claimed.attempt > 1:
                # An attempt whose process was killed mid-file left its upload open: this attempt owns the job
                # now. The upload a checkpoint goes on with is kept.
                abort_abandoned_uploads(
                    self._s3,
                    bucket=self._settings.reports_bucket,
                    job=claimed.job,
                    keep_attempt=claimed.attempt,
                    keep_upload_id=checkpoint.upload.upload_id if checkpoint else None,
                )
            report = self._produce(claimed, checkpoint, deadline)
            logger.info(
                "File written" if report else "Generation continues in the next invocation",
                extra={"seconds": round(self._clock() - started, 2), "peak_rss_mib": _peak_rss_mib()},
            )
            if report is None:
                return  # handed over to the next invocation
            if claimed.checkpoint is not None or claimed.attempt > 1:
                # Only an earlier invocation can have left checkpoints: most files need no listing.
                forget_checkpoints(self._s3, bucket=self._settings.reports_bucket, job=claimed.job)
            # The hand-over is inside: a file the state machine never heard of must not leave the job running.
            self._hand_over.succeeded(claimed, report)
        except JobCancelled:
            self._end_cancelled(claimed)
        except ReportTooLarge as too_large:
            self._hand_over.failed(claimed, Failed(too_large.code, too_large.message))
            self._discard(claimed)
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
                self._discard(claimed)
        except Exception:
            logger.exception("Generation failed unexpectedly")
            if self._cancel_requested(claimed):
                self._end_cancelled(claimed)
                return
            if receive_count < self._settings.max_receive_count and not self._continuation.out_of_attempts(claimed):
                self._release(claimed)
                raise
            self._fail_on_last_delivery(claimed)
            self._discard(claimed)

    def record_progress(self, claimed: StoredJob, changes: dict[str, Any]) -> StoredJob:
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

    def _produce(self, claimed: StoredJob, checkpoint: Checkpoint | None, deadline: float) -> ReportFile | None:
        """The file, or None when this invocation's time ran out first and the job was handed over."""
        job = claimed.job
        definition = definition_for(job.job_type)
        encoder = make_encoder(job.format, definition.column_names)
        file_name = file_name_for(job, definition, encoder.file_extension)
        content_type = mime_type(job.format, gzip=job.compression is Compression.GZIP)
        if job.compression is Compression.GZIP:
            compressor = GzipCompressor(state=checkpoint.gzip if checkpoint else None)
        else:
            compressor = None
        progress = Progress(
            claimed,
            self.record_progress,
            interval_seconds=self._settings.progress_interval_seconds,
            clock=self._clock,
            pages=checkpoint.pages if checkpoint else 0,
            percent=claimed.job.progress_pct if checkpoint else 0,
        )
        upload = MultipartUpload(
            self._s3,
            bucket=self._settings.reports_bucket,
            key=checkpoint.upload.key if checkpoint else object_key(job, claimed.attempt, file_name),
            content_type=content_type,
            content_disposition=f'attachment; filename="{file_name}"',
            resume=checkpoint.upload if checkpoint else None,
        )
        concurrency = self._settings.source_concurrency
        start = checkpoint.position if checkpoint else first_position(definition, job, concurrency=concurrency)
        resume = Written.from_json(checkpoint.written) if checkpoint else None
        slices = slice_count(definition, job, start)
        position: ReadPosition | None = start

        # A report read in slices has a count per slice only, not one for the whole.
        size_unchecked = checkpoint is None and not start.sliced

        def page_done(rows: int, page: Page) -> None:
            nonlocal position, size_unchecked
            assert position is not None
            if rows > self._limits.max_rows:
                raise ReportTooLarge(self._limits.rows_exceeded())
            if size_unchecked:
                size_unchecked = False
                self._refuse_too_large(definition, job, page)
            position = position.after(page, rows=rows, slices=slices)
            progress.page_done(rows, page.total)
            # At least one page an invocation, so every invocation moves the file on.
            if position is not None and self._clock() >= deadline:
                raise StopWriting()

        try:
            watch = CancelWatch(
                lambda: self._cancel_requested(claimed), step_seconds=self._settings.cancel_step_seconds
            )
            written = encode_pages(
                definition,
                watch.items(
                    report_pages(
                        self._upstream,
                        definition,
                        job,
                        concurrency=concurrency,
                        start=start,
                        rows=resume.rows if resume else 0,
                    )
                ),
                encoder,
                upload.write,
                page_done,
                compressor=compressor,
                resume=resume,
            )
            if not written.finished:
                assert position is not None
                self._continuation.hand_over(progress, checkpoint, position, written, upload, compressor)
                return None
            progress.finishing(written.rows)
            stored = upload.complete()
        except ObjectTooLarge:
            upload.abort()
            raise ReportTooLarge(self._limits.bytes_exceeded()) from None
        except (JobCancelled, UpstreamError, ReportTooLarge):
            upload.abort()  # the job ends here: nothing of its file is kept
            raise
        except BaseException:
            # A retry goes on from the checkpoint, whose upload must stay; without one it starts afresh.
            if checkpoint is None:
                upload.abort()
            else:
                upload.close()
            raise
        metrics.add_metric(name="RowsWritten", unit="Count", value=written.rows)
        return ReportFile(
            stored=stored,
            file_name=file_name,
            mime_type=content_type,
            row_count=written.rows,
            watermark=written.watermark,
        )

    def _refuse_too_large(self, definition: ReportDefinition, job: Job, first_page: Page) -> None:
        """After the first page of a report read whole, its size as estimated at create: a job the create did
        not check (a scheduled one, or an upstream that was away) stops here rather than hours later."""
        estimate = estimate_size(definition, job, first_page)
        refusal = self._limits.refusal(estimate) if estimate else None
        if refusal is not None:
            raise ReportTooLarge(refusal)

    def _discard(self, claimed: StoredJob) -> None:
        discard_unfinished_file(self._s3, bucket=self._settings.reports_bucket, job=claimed.job)

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
        self._discard(claimed)
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
        """Back to queued, so the redelivered message can claim it again; a job whose file an earlier
        invocation left at a checkpoint waits for its next invocation instead, keeping the checkpoint."""
        try:
            if claimed.checkpoint is not None:
                grace = now_utc() + timedelta(seconds=self._settings.sweep_queued_after_seconds)
                self._jobs.update_attempt(
                    claimed, {"phase": CONTINUING, "lease_expires_at": format_timestamp(grace), "updated_at": _now()}
                )
                return
            self._jobs.update_attempt(
                claimed,
                {"status": JobStatus.QUEUED, "phase": None, "progress_pct": 0, "updated_at": _now()},
                remove=("lease_expires_at",),
            )
        except StaleWrite:
            pass


def _peak_rss_mib() -> float:
    """The process's peak resident memory so far (a warm sandbox's, across its invocations)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


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
    queue = GenerateQueue(clients.sqs(), settings.generate_queue_url)
    return Generator(settings, JobRepository(table), ending, upstream_client(), clients.s3(), hand_over, queue)


def reset() -> None:
    generator.cache_clear()
    upstream_client.cache_clear()
    secrets.reset()
