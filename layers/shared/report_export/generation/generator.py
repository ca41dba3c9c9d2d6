"""Turning a queued job into a report file: claim, stream, store, hand over to the state machine.

Rows flow page by page from the upstream through normalisation and an order check into the
encoder, optional gzip, and S3 multipart parts, so memory stays flat whatever the row count.
The job item is the source of truth throughout: every write is conditional on the attempt
that claimed the job, a cancel is noticed at each checkpoint, and no exception leaves a job
running (it is released for a retry, or failed on the last allowed delivery).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from report_export.aws import clients
from report_export.aws.dynamo.store import JobStore, StaleWrite, StoredJob, attempt_update, job_key
from report_export.aws.s3 import MultipartUpload, StoredObject
from report_export.core import signing
from report_export.core.models import Compression, FileReference, JobStatus, canonical_json, format_timestamp, now_utc
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings, get_settings
from report_export.core.signing import Signer
from report_export.generation.reports import BadRecord, ReportDefinition, definition_for
from report_export.generation.sources import Page, RetryPolicy, UpstreamBadData, UpstreamClient, UpstreamError
from report_export.generation.writers import GzipCompressor, RowEncoder, make_encoder
from report_export.jobs.links import DownloadGrant, DownloadTokens
from report_export.jobs.models import GenerateJobMessage, Job
from report_export.reexports.finish import ReexportLineage

DOWNLOAD_TOKEN_PURPOSE = "download-token"
GZIP_MIME_TYPE = "application/gzip"
# Progress without an upstream total is an estimate from pages read; it never claims to be done.
_ESTIMATE_CAP_PCT = 95
_FINISHING_PCT = 99


class JobCancelled(Exception):
    """A cancel was requested while the job ran."""


class LostClaim(Exception):
    """Another attempt owns the job now (or it changed underneath us); this one stops quietly."""


@dataclass(frozen=True, slots=True)
class ReportFile:
    stored: StoredObject
    file_name: str
    mime_type: str
    row_count: int
    watermark: str | None


def file_name_for(job: Job, definition: ReportDefinition, extension: str) -> str:
    """Built from the type and period only: never from user text, so it is safe in keys and headers."""
    period = f"_{job.start_date.isoformat()}_{job.end_date.isoformat()}" if job.start_date and job.end_date else ""
    name = f"{definition.job_type.value.lower()}{period}{extension}"
    return name + ".gz" if job.compression is Compression.GZIP else name


def object_key(job: Job, attempt: int, file_name: str) -> str:
    # The attempt keeps attempts apart: a stale attempt's rollback must never delete a newer one's file.
    return f"tenants/{job.tenant_id}/jobs/{job.id}/{attempt}/{file_name}"


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
        store: JobStore,
        upstream: UpstreamClient,
        s3: Any,
        stepfunctions: Any,
        download_tokens: DownloadTokens,
        clock: Callable[[], float] = time.monotonic,
        reexports: ReexportLineage | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._upstream = upstream
        self._s3 = s3
        self._sfn = stepfunctions
        self._tokens = download_tokens
        self._clock = clock
        # A job that regenerates a report ends its re-export record with it (DESIGN "Re-export").
        self._reexports = reexports or ReexportLineage(settings, store, s3)

    def generate(self, message: GenerateJobMessage, *, receive_count: int) -> None:
        """Produce the report for one wake-up message. Raises only when the message should be retried."""
        logger.append_keys(tenant_id=message.tenant_id, job_id=message.job_id)
        now = now_utc()
        claimed = self._store.claim_job(
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
        self._reexports.started(claimed)
        try:
            # The hand-over is inside: a file the state machine never heard of must not leave the job running.
            self._finish(claimed, report=self._produce(claimed))
        except JobCancelled:
            self._mark_cancelled(claimed)
        except LostClaim:
            logger.warning("Another attempt took the job over; stopping")
        except UpstreamError as error:
            self._finish(claimed, failure=(error.code, str(error)))
        except Exception:
            logger.exception("Generation failed unexpectedly")
            if receive_count < self._settings.max_receive_count:
                self._release(claimed)
                raise
            self._fail_on_last_delivery(claimed)

    def _fail_on_last_delivery(self, claimed: StoredJob) -> None:
        failure = ("INTERNAL", "The report could not be generated")
        try:
            self._finish(claimed, failure=failure)
        except Exception:
            # Without the state machine the failure cannot be announced, but the job must still end.
            logger.exception("The failure could not be handed over; marking the job failed directly")
            changes = _failure_changes(*failure)
            if claimed.job.reexport_id and self._reexports.fail(
                claimed, attempt_update(claimed, changes, remove=("lease_expires_at",)), *failure
            ):
                return
            try:
                self._store.update_attempt(claimed, changes, remove=("lease_expires_at",))
            except StaleWrite:
                pass

    def _produce(self, claimed: StoredJob) -> ReportFile:
        job = claimed.job
        definition = definition_for(job.job_type)
        encoder = make_encoder(job.format, definition.column_names)
        compressor = GzipCompressor() if job.compression is Compression.GZIP else None
        file_name = file_name_for(job, definition, encoder.file_extension)
        mime_type = GZIP_MIME_TYPE if compressor else encoder.mime_type
        progress = _Progress(self, claimed)
        upload = MultipartUpload(
            self._s3,
            bucket=self._settings.reports_bucket,
            key=object_key(job, claimed.attempt, file_name),
            content_type=mime_type,
            content_disposition=f'attachment; filename="{file_name}"',
        )
        with upload:
            rows, watermark = encode_pages(
                definition,
                self._upstream.pages(definition, job),
                encoder,
                upload.write,
                lambda rows, total: progress.page_done(rows=rows, total=total),
                compressor=compressor,
            )
            progress.finishing(rows=rows)
            stored = upload.complete()
        metrics.add_metric(name="RowsWritten", unit="Count", value=rows)
        return ReportFile(stored=stored, file_name=file_name, mime_type=mime_type, row_count=rows, watermark=watermark)

    def checkpoint(self, claimed: StoredJob, changes: dict[str, Any]) -> StoredJob:
        lease_until = now_utc() + timedelta(seconds=self._settings.lease_seconds)
        try:
            current = self._store.update_attempt(
                claimed,
                {**changes, "lease_expires_at": format_timestamp(lease_until), "updated_at": _now()},
            )
        except StaleWrite:
            raise LostClaim() from None
        if current.job.cancel_requested:
            raise JobCancelled()
        return current

    def _mark_cancelled(self, claimed: StoredJob) -> None:
        changes = {"status": JobStatus.CANCELLED, "phase": None, "updated_at": _now()}
        cancelled_with_reexport = self._reexports.cancel(
            claimed, attempt_update(claimed, changes, remove=("lease_expires_at",))
        )
        if not cancelled_with_reexport:
            try:
                self._store.update_attempt(claimed, changes, remove=("lease_expires_at",))
            except StaleWrite:
                return
        logger.info("Generation cancelled on request; the upload was aborted")
        metrics.add_metric(name="JobsCancelledWhileRunning", unit="Count", value=1)

    def _release(self, claimed: StoredJob) -> None:
        """Back to queued, so the redelivered message can claim it again."""
        try:
            self._store.update_attempt(
                claimed,
                {"status": JobStatus.QUEUED, "phase": None, "progress_pct": 0, "updated_at": _now()},
                remove=("lease_expires_at",),
            )
        except StaleWrite:
            pass

    def _finish(
        self, claimed: StoredJob, *, report: ReportFile | None = None, failure: tuple[str, str] | None = None
    ) -> None:
        """Hand the outcome to the state machine, which stores it, publishes it and notifies."""
        job = claimed.job
        execution_input = (
            self._success_input(claimed, report) if report else self._failure_input(claimed, *(failure or ("", "")))
        )
        if job.reexport_id:
            execution_input = self._reexports.augment(
                claimed,
                execution_input,
                new_file=_file_reference(report) if report else None,
                manifest=self.manifest(job, definition_for(job.job_type), report) if report else None,
            )
        try:
            self._sfn.start_execution(
                stateMachineArn=self._settings.state_machine_arn,
                name=f"{job.id}-{claimed.attempt}",
                input=canonical_json(execution_input),
            )
        except self._sfn.exceptions.ExecutionAlreadyExists:
            logger.info("The store-and-notify execution was already started")
        logger.info("Generation finished", extra={"outcome": execution_input["outcome"]})
        if failure:
            metrics.add_metric(name="JobsFailed", unit="Count", value=1)
            logger.warning("Job failed", extra={"error_code": failure[0], "error_message": failure[1]})

    def _success_input(self, claimed: StoredJob, report: ReportFile) -> dict[str, Any]:
        job = claimed.job
        definition = definition_for(job.job_type)
        finished = now_utc()
        expires_at = finished + timedelta(days=self._settings.retention_days)
        manifest = self.manifest(job, definition, report)
        store = attempt_update(
            claimed,
            {
                "status": JobStatus.SUCCEEDED,
                "phase": None,
                "progress_pct": 100,
                "rows_written": report.row_count,
                "row_count": report.row_count,
                "file_path": report.stored.key,
                "file_name": report.file_name,
                "mime_type": report.mime_type,
                "size_bytes": report.stored.size_bytes,
                "sha256": report.stored.sha256,
                "expires_at": format_timestamp(expires_at),
                "manifest_json": canonical_json(manifest),
                "updated_at": format_timestamp(finished),
            },
            remove=("lease_expires_at",),
        )
        store_failed = ("STORE_FAILED", "The report was generated but could not be stored")
        rollback = {
            **self._failure_update(claimed, *store_failed).as_task_input(),
            **self._failure_announcement(job, *store_failed),
        }
        link = self._download_link(job, expires_at)
        period = _period_text(job)
        summary = {
            "tenant_id": job.tenant_id,
            "job_id": job.id,
            "job_type": job.job_type.value,
            "status": JobStatus.SUCCEEDED.value,
            "requested_by": job.requested_by,
            "file_name": report.file_name,
            "size_bytes": report.stored.size_bytes,
            "sha256": report.stored.sha256,
            "row_count": report.row_count,
            "expires_at": format_timestamp(expires_at),
        }
        return {
            **self._common_input(claimed),
            "outcome": "succeeded",
            "store": store.as_task_input(),
            "rollback": rollback,
            "object": {"bucket": report.stored.bucket, "key": report.stored.key},
            "event": {"detail_type": "Report Job Succeeded", "detail": summary},
            "notification": {
                "subject": f"Report ready: {definition.title}{period}",
                "message": (
                    f"Your report is ready.\n\n"
                    f"Report: {definition.title}{period}\n"
                    f"File: {report.file_name} ({report.row_count} rows, {report.stored.size_bytes} bytes)\n"
                    f"SHA-256: {report.stored.sha256}\n"
                    f"Download: {link}\n\n"
                    f"The link works until {format_timestamp(min(expires_at, self._link_expiry()))}; "
                    f"the file is kept until {format_timestamp(expires_at)}.\n"
                    f"Job id: {job.id}\n"
                ),
                "attributes": {"tenant_id": job.tenant_id, "status": "succeeded", "job_type": job.job_type.value},
            },
        }

    def _failure_input(self, claimed: StoredJob, code: str, message: str) -> dict[str, Any]:
        return {
            **self._common_input(claimed),
            "outcome": "failed",
            "fail": self._failure_update(claimed, code, message).as_task_input(),
            **self._failure_announcement(claimed.job, code, message),
        }

    def _failure_announcement(self, job: Job, code: str, message: str) -> dict[str, Any]:
        definition = definition_for(job.job_type)
        period = _period_text(job)
        return {
            "event": {
                "detail_type": "Report Job Failed",
                "detail": {
                    "tenant_id": job.tenant_id,
                    "job_id": job.id,
                    "job_type": job.job_type.value,
                    "status": JobStatus.FAILED.value,
                    "requested_by": job.requested_by,
                    "error_code": code,
                    "error_message": message,
                },
            },
            "notification": {
                "subject": f"Report failed: {definition.title}{period}",
                "message": (
                    f"Your report could not be produced.\n\n"
                    f"Report: {definition.title}{period}\n"
                    f"Reason: {code}: {message}\n"
                    f"Job id: {job.id}\n"
                ),
                "attributes": {"tenant_id": job.tenant_id, "status": "failed", "job_type": job.job_type.value},
            },
        }

    def _common_input(self, claimed: StoredJob) -> dict[str, Any]:
        job = claimed.job
        key = job_key(job.tenant_id, job.id)
        return {
            "tenant_id": job.tenant_id,
            "job_id": job.id,
            "job_type": job.job_type.value,
            "attempt": claimed.attempt,
            "key": key,
            "notified": {
                "key": key,
                "update_expression": "SET #sent = :now",
                "condition_expression": "attribute_exists(PK)",
                "names": {"#sent": "notification_sent_at"},
                "values": {":now": {"S": _now()}},
            },
        }

    def _failure_update(self, claimed: StoredJob, code: str, message: str) -> Any:
        return attempt_update(claimed, _failure_changes(code, message), remove=("lease_expires_at",))

    def manifest(self, job: Job, definition: ReportDefinition, report: ReportFile) -> dict[str, Any]:
        """Everything a re-export needs to reproduce this file and to explain a difference."""
        parameters = {
            "job_type": job.job_type.value,
            "format": job.format.value,
            "compression": job.compression.value if job.compression else None,
            "farm_id": job.farm_id,
            "barn_id": job.barn_id,
            "batch_id": job.batch_id,
            "start_date": job.start_date.isoformat() if job.start_date else None,
            "end_date": job.end_date.isoformat() if job.end_date else None,
            "filters": job.filters,
        }
        return {
            "parameters": parameters,
            "parameters_sha256": hashlib.sha256(canonical_json(parameters).encode()).hexdigest(),
            "definition": {
                "job_type": definition.job_type.value,
                "version": definition.version,
                "columns": list(definition.column_names),
                "sort_key": list(definition.sort_key),
            },
            "time_zone": "UTC",
            "source_watermark": report.watermark,
            "output": {
                "sha256": report.stored.sha256,
                "size_bytes": report.stored.size_bytes,
                "row_count": report.row_count,
                "mime_type": report.mime_type,
            },
        }

    def _link_expiry(self) -> datetime:
        return now_utc() + timedelta(seconds=self._settings.link_ttl_seconds)

    def _download_link(self, job: Job, file_expires_at: datetime) -> str:
        token = self._tokens.issue(
            DownloadGrant(tenant_id=job.tenant_id, job_id=job.id, expires_at=min(file_expires_at, self._link_expiry()))
        )
        base = self._settings.public_api_url.rstrip("/")
        return f"{base}/api/v1/reports/jobs/{job.id}/file?token={token}"

    @property
    def progress_interval_seconds(self) -> float:
        return self._settings.progress_interval_seconds

    def monotonic(self) -> float:
        return self._clock()


class _Progress:
    """Writes progress at a bounded rate; each write extends the lease and looks for a cancel."""

    def __init__(self, generator: Generator, claimed: StoredJob) -> None:
        self._generator = generator
        self._claimed = claimed
        self._pages = 0
        self._last_write = generator.monotonic()

    def page_done(self, *, rows: int, total: int | None) -> None:
        self._pages += 1
        if self._generator.monotonic() - self._last_write < self._generator.progress_interval_seconds:
            return
        if total:
            percent = min(_FINISHING_PCT - 1, rows * 100 // total)
        else:
            percent = min(_ESTIMATE_CAP_PCT, round(100 * (1 - 0.9**self._pages)))
        self._write({"progress_pct": percent, "rows_written": rows, "phase": "fetching"})

    def finishing(self, *, rows: int) -> None:
        self._write({"progress_pct": _FINISHING_PCT, "rows_written": rows, "phase": "storing"})

    def _write(self, changes: dict[str, Any]) -> None:
        self._claimed = self._generator.checkpoint(self._claimed, changes)
        self._last_write = self._generator.monotonic()


def _failure_changes(code: str, message: str) -> dict[str, Any]:
    return {
        "status": JobStatus.FAILED,
        "phase": None,
        "error_code": code,
        "error_message": message,
        "updated_at": _now(),
    }


def _now() -> str:
    return format_timestamp(now_utc())


def _file_reference(report: ReportFile) -> FileReference:
    return FileReference(
        key=report.stored.key,
        file_name=report.file_name,
        mime_type=report.mime_type,
        size_bytes=report.stored.size_bytes,
        sha256=report.stored.sha256,
        row_count=report.row_count,
    )


def _period_text(job: Job) -> str:
    if job.start_date and job.end_date:
        return f" {job.start_date.isoformat()} to {job.end_date.isoformat()}"
    return ""


@cache
def _service_token(parameter_name: str) -> str:
    return clients.ssm().get_parameter(Name=parameter_name, WithDecryption=True)["Parameter"]["Value"]


@cache
def generator() -> Generator:
    settings = get_settings()
    upstream = UpstreamClient(
        settings.upstream_urls,
        token=lambda: _service_token(settings.service_token_parameter),
        retry=RetryPolicy(
            max_attempts=settings.upstream_max_attempts,
            base_delay_s=settings.upstream_backoff_base_seconds,
            max_total_wait_s=settings.upstream_max_wait_seconds,
        ),
    )
    return Generator(
        settings,
        JobStore(clients.dynamodb(), settings.table_name),
        upstream,
        clients.s3(),
        clients.stepfunctions(),
        DownloadTokens(Signer(settings.signing_secret_parameter, purpose=DOWNLOAD_TOKEN_PURPOSE)),
    )


def reset() -> None:
    generator.cache_clear()
    _service_token.cache_clear()
    signing.reset()
