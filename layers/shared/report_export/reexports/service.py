"""The re-export coordinator (seed 000): regenerate a past report from its stored parameters, with lineage.

`reexport_report` writes, in one transaction, the claim on the original report (so concurrent
requests give one re-export), the re-export record, the job that regenerates the report and
the history entries; the job then runs through the generation pipeline like any other, and the
store-and-notify state machine ends the record together with the job. `store_reexport_result` and
`notify_reexport_complete` are the internal-service side of the contract (PUT).
"""

from __future__ import annotations

import json
import posixpath
import random
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from uuid6 import uuid7

from report_export.aws import clients
from report_export.aws.dynamo.store import (
    ANNOUNCEMENT_CLAIM,
    JobStore,
    JobUpdate,
    StaleWrite,
    StoredJob,
    StoredReexport,
    job_update,
    reexport_update,
    versioned_update,
)
from report_export.aws.sqs import GenerateQueue
from report_export.core.auth import Principal
from report_export.core.errors import (
    ConcurrentUpdate,
    InvalidTransition,
    JobNotCancellable,
    NotFound,
    ReexportNotCancellable,
    ReportFileGone,
    ReportNotReexportable,
    ServiceUnavailable,
    ValidationFailed,
    VersionConflict,
    describe_validation_errors,
)
from report_export.core.history import SERVICE_ACTOR, HistoryEventType, new_event
from report_export.core.models import (
    JOB_ID_PATTERN,
    FileReference,
    JobStatus,
    canonical_json,
    format_timestamp,
    now_utc,
)
from report_export.core.observability import logger, metrics
from report_export.core.paging import CursorCodec, query_fingerprint
from report_export.core.settings import Settings, get_settings
from report_export.core.signing import Signer
from report_export.jobs.downloads import DownloadService, download_service
from report_export.jobs.models import CreateJobRequest, Job
from report_export.jobs.service import JobService, job_service
from report_export.reexports.lineage import (
    REEXPORT_COMPLETED_DETAIL_TYPE,
    lineage_summary,
    lineage_text,
    success_changes,
)
from report_export.reexports.models import (
    ComparisonSummary,
    Reexport,
    ReexportOverrides,
    ReexportPage,
    ReexportStatus,
    StoreFileReference,
    UpdateReexportRequest,
)

_ID_RE = re.compile(JOB_ID_PATTERN)
# Conditional writes race with other requests and with the generator: read again a few times, with a jittered
# backoff between tries (twenty users at once collide in DynamoDB's transactions), then give up.
_ATTEMPTS = 6
_BACKOFF_BASE_SECONDS = 0.02
_BACKOFF_CAP_SECONDS = 0.5
_PARAMETER_FIELDS = {"job_type", "format", "compression", "farm_id", "barn_id", "batch_id", "start_date", "end_date"}
# A claim to announce older than this was abandoned (its request died): another request may take it over.
_ANNOUNCEMENT_CLAIM_SECONDS = 300
_ETAG_RE = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')


@dataclass(frozen=True, slots=True)
class ReexportOutcome:
    record: Reexport
    replayed: bool


@dataclass(frozen=True, slots=True)
class ReexportCancelOutcome:
    record: Reexport
    # False when the job is running: the cancel is recorded and the generator stops at its next checkpoint.
    completed: bool


def parse_if_match(value: str | None) -> int | None:
    """The version in an If-Match header ("3", or the ETag form "\\"3\\""); ValidationFailed otherwise."""
    if value is None:
        return None
    match = _ETAG_RE.match(value)
    if match is None:
        raise ValidationFailed("If-Match must be the re-export's version, as its ETag gives it")
    return int(match.group(1))


def job_parameters(job: Job) -> dict[str, Any]:
    """What determined a job's content, in the form of a new job's request (nulls left out)."""
    parameters = job.model_dump(mode="json", include=_PARAMETER_FIELDS, exclude_none=True)
    if job.filters is not None:
        parameters["filters"] = job.filters
    return parameters


class ReexportService:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        queue: GenerateQueue,
        cursors: CursorCodec,
        jobs: JobService,
        downloads: DownloadService,
        s3: Any,
        sns: Any,
        events: Any,
    ) -> None:
        self._settings = settings
        self._store = store
        self._queue = queue
        self._cursors = cursors
        self._jobs = jobs
        self._downloads = downloads
        self._s3 = s3
        self._sns = sns
        self._events = events

    # --- the seed's interface -------------------------------------------------------------------------

    def reexport_report(
        self,
        principal: Principal,
        report_id: str,
        *,
        overrides: ReexportOverrides | None = None,
        reason: str | None = None,
    ) -> ReexportOutcome:
        """Start regenerating a succeeded report, or answer the re-export already pending or running for it."""
        for attempt in range(_ATTEMPTS):
            if attempt:
                _backoff(attempt)
            original = self._load_report(principal, report_id)
            if original.job.active_reexport_id:
                active = self._active(principal, original)
                if active is not None:
                    return ReexportOutcome(active, replayed=True)
                continue  # the active record was left over by a job that had finished: repaired, read again
            if original.job.status is not JobStatus.SUCCEEDED:
                raise ReportNotReexportable(
                    f"Only a report that succeeded can be re-exported; this one is {original.job.status.value}"
                )
            try:
                record, job = self._create(principal, original, overrides, reason)
            except StaleWrite:
                continue  # another request claimed the report, or it changed: read it again
            self._wake(job)
            return ReexportOutcome(record, replayed=False)
        raise ConcurrentUpdate("The report changed while the re-export was being requested; try again")

    def build_export_params(
        self, historical_record: Job, overrides: ReexportOverrides | None = None
    ) -> CreateJobRequest:
        """The original's period, scope and options with the overrides applied, validated as a new job's."""
        requested = {**job_parameters(historical_record), **(overrides.given() if overrides else {})}
        try:
            parameters = CreateJobRequest.model_validate(requested)
        except ValidationError as error:
            raise ValidationFailed(
                f"the re-export's parameters are not valid: {describe_validation_errors(error.errors())}"
            ) from None
        self._jobs.check_period_length(parameters)
        return parameters

    def store_reexport_result(
        self, principal: Principal, reexport_id: str, file_ref: StoreFileReference, *, expected_version: int
    ) -> StoredReexport:
        """Record a result file an internal service produced: pending/running → succeeded, the original
        released, the regenerating job superseded (cancelled, or asked to stop), in one transaction."""
        stored = self._load_versioned(principal, reexport_id, expected_version)
        record = stored.record
        if not record.status.is_active:
            raise InvalidTransition(f"A re-export that is {record.status.value} cannot take a result")
        head = self._head_tenant_object(principal.tenant_id, file_ref)
        job = self._store.get_job(record.tenant_id, record.job_id, consistent=True)
        now = format_timestamp(now_utc())
        new_file = FileReference(
            key=file_ref.key,
            file_name=posixpath.basename(file_ref.key),
            mime_type=head.get("ContentType"),
            size_bytes=file_ref.size_bytes,
            sha256=file_ref.sha256,
            row_count=file_ref.row_count,
        )
        changes = success_changes(record, new_file, now)
        if not changes["matches_original"]:
            changes["comparison"] = ComparisonSummary(
                compared=False, reason="the file was stored by an internal service; rows were not compared"
            )
        event = new_event(
            record.report_id,
            HistoryEventType.REEXPORT_COMPLETED,
            actor=principal.subject,
            details={
                "reexport_id": record.id,
                "job_id": record.job_id,
                "outcome": ReexportStatus.SUCCEEDED.value,
                "matches_original": changes["matches_original"],
                "sha256": file_ref.sha256,
                "requested_by": record.requested_by,
                "reason": record.reason,
                "via": "internal_service",
            },
        )
        try:
            self._store.store_reexport_result(stored, changes, event, job_change=_superseding(job, now))
        except StaleWrite:
            self._explain_failed_write(principal, reexport_id, expected_version)
        logger.info("Re-export result stored by an internal service", extra={"reexport_id": record.id})
        metrics.add_metric(name="ReexportResultsStored", unit="Count", value=1)
        return self._load(principal, reexport_id, consistent=True)

    def notify_reexport_complete(
        self, principal: Principal, reexport_id: str, *, expected_version: int
    ) -> StoredReexport:
        """Announce a finished re-export (EventBridge, SNS) with its lineage, then record that it was sent."""
        stored = self._load_versioned(principal, reexport_id, expected_version)
        record = stored.record
        if record.status not in (ReexportStatus.SUCCEEDED, ReexportStatus.FAILED):
            raise InvalidTransition(f"Only a finished re-export can be announced; this one is {record.status.value}")
        if record.notification_sent_at is not None:
            raise InvalidTransition(
                f"The re-export's completion was already announced at {format_timestamp(record.notification_sent_at)}"
            )
        # Claim first, announce, then record: two requests at the same version cannot both announce.
        moment = now_utc()
        marker = f"{format_timestamp(moment)}#{uuid7()}"
        try:
            self._store.claim_reexport_announcement(
                record.tenant_id,
                record.id,
                expected_version=stored.version,
                marker=marker,
                stale_before=format_timestamp(moment - timedelta(seconds=_ANNOUNCEMENT_CLAIM_SECONDS)),
            )
        except StaleWrite:
            self._explain_failed_claim(principal, reexport_id, expected_version)
        try:
            self._announce(record)
        except (ClientError, BotoCoreError, RuntimeError):
            logger.exception("Announcing the re-export's completion failed", extra={"reexport_id": record.id})
            self._store.release_reexport_announcement(record.tenant_id, record.id, marker=marker)
            raise ServiceUnavailable(
                "The re-export's completion could not be announced right now; try again with the same version"
            ) from None
        now = format_timestamp(now_utc())
        try:
            updated = self._store.update_reexport(
                reexport_update(
                    record.tenant_id,
                    record.id,
                    {"notification_sent_at": now, "updated_at": now},
                    condition="#version = :expected_version AND #claim = :marker",
                    condition_names={"#version": "version", "#claim": ANNOUNCEMENT_CLAIM},
                    condition_values={":expected_version": stored.version, ":marker": marker},
                    remove=(ANNOUNCEMENT_CLAIM,),
                )
            )
        except StaleWrite:
            raise VersionConflict("The re-export changed while its completion was announced; read it again") from None
        logger.info("Re-export completion announced", extra={"reexport_id": record.id})
        return updated

    # --- the rest of the REST contract ----------------------------------------------------------------

    def get_reexport(self, principal: Principal, reexport_id: str) -> Reexport:
        """The record; once it succeeded and its file is there, with a fresh download URL (an audit event)."""
        record = self._load(principal, reexport_id).record
        if record.status is not ReexportStatus.SUCCEEDED or record.new_file is None:
            return record
        job = self._store.get_job(record.tenant_id, record.job_id)
        if job is not None and job.job.expires_at is not None and job.job.expires_at <= now_utc():
            # As the job's own download (410 REPORT_EXPIRED): an expired file is not handed out; re-export again.
            return record
        new_file = record.new_file
        try:
            presigned = self._downloads.file_link(
                record.tenant_id,
                record.job_id,
                key=new_file.key,
                file_name=new_file.file_name or posixpath.basename(new_file.key),
                issued_to=principal.subject,
                details={"reexport_id": record.id},
            )
        except ReportFileGone:
            return record
        return record.model_copy(update={"download_url": presigned.url, "download_expires_at": presigned.expires_at})

    def list_reexports(
        self,
        principal: Principal,
        *,
        status: ReexportStatus | None,
        report_id: str | None,
        limit: int,
        cursor: str | None,
    ) -> ReexportPage:
        fingerprint = query_fingerprint(
            tenant=principal.tenant_id,
            list="reexports",
            status=status.value if status else None,
            report_id=report_id,
        )
        after = self._cursors.decode(cursor, fingerprint=fingerprint) if cursor else None
        stored, more = self._store.query_reexports(
            principal.tenant_id, status=status, report_id=report_id, limit=limit, after_reexport_id=after
        )
        next_cursor = None
        if more and stored:
            next_cursor = self._cursors.encode(after=stored[-1].record.id, fingerprint=fingerprint)
        return ReexportPage(items=[entry.record for entry in stored], next_cursor=next_cursor)

    def cancel_reexport(self, principal: Principal, reexport_id: str) -> ReexportCancelOutcome:
        """Cancel through the job's own cancel: a queued job ends with its re-export at once, a running
        one is asked to stop and the generator ends both."""
        stored = self._load(principal, reexport_id, consistent=True)
        if stored.record.status.is_active:
            stored = self._repair_if_orphaned(principal, stored)
            if stored.record.status is ReexportStatus.CANCELLED:
                return ReexportCancelOutcome(stored.record, completed=True)  # its job had been cancelled
        record = stored.record
        if not record.status.is_active:
            raise ReexportNotCancellable(
                f"The re-export has already {record.status.value} and can no longer be cancelled"
            )
        try:
            outcome = self._jobs.cancel_job(principal, record.job_id)
        except (JobNotCancellable, NotFound):
            raise ReexportNotCancellable("The re-export has already finished and can no longer be cancelled") from None
        # A running job's cancel also marked the record cancel_requested (the job's own cancel does that).
        return ReexportCancelOutcome(self._load(principal, reexport_id, consistent=True).record, outcome.completed)

    def update_reexport(
        self, principal: Principal, reexport_id: str, request: UpdateReexportRequest, *, if_match: str | None
    ) -> Reexport:
        """PUT: store a result file, announce the completion, or both, at the version the caller read."""
        header_version = parse_if_match(if_match)
        if (
            request.expected_version is not None
            and header_version is not None
            and request.expected_version != header_version
        ):
            raise ValidationFailed("expected_version and If-Match name different versions")
        expected = request.expected_version or header_version
        if expected is None:
            raise ValidationFailed("expected_version (or the If-Match header) is required")
        stored: StoredReexport | None = None
        if request.new_file is not None:
            stored = self.store_reexport_result(principal, reexport_id, request.new_file, expected_version=expected)
            expected = stored.version
        if request.notification_sent:
            stored = self.notify_reexport_complete(principal, reexport_id, expected_version=expected)
        if stored is None:  # the request model already requires one of the two
            raise ValidationFailed("give new_file, notification_sent or both")
        return stored.record

    # --- helpers --------------------------------------------------------------------------------------

    def _create(
        self,
        principal: Principal,
        original: StoredJob,
        overrides: ReexportOverrides | None,
        reason: str | None,
    ) -> tuple[Reexport, Job]:
        source = original.job
        parameters = self.build_export_params(source, overrides)
        now = now_utc()
        reexport_id, job_id = str(uuid7()), str(uuid7())
        job = Job(
            **parameters.model_dump(exclude={"tenant_id", "idempotency_key"}),
            id=job_id,
            tenant_id=principal.tenant_id,
            requested_by=principal.subject,
            status=JobStatus.QUEUED,
            reexport_id=reexport_id,
            reexport_of=source.id,
            created_at=now,
            updated_at=now,
        )
        record = Reexport(
            id=reexport_id,
            tenant_id=principal.tenant_id,
            report_id=source.id,
            job_id=job_id,
            status=ReexportStatus.PENDING,
            requested_by=principal.subject,
            reason=reason,
            original_parameters=job_parameters(source),
            effective_parameters=parameters.export_parameters(),
            overrides=overrides.given() if overrides else None,
            original_file=_file_of(source),
            created_at=now,
            updated_at=now,
            version=1,
        )
        requested = new_event(
            source.id,
            HistoryEventType.REEXPORT_REQUESTED,
            actor=principal.subject,
            at=now,
            details={
                "reexport_id": reexport_id,
                "job_id": job_id,
                "reason": reason,
                "overrides": record.overrides,
            },
        )
        self._store.create_reexport(
            record,
            job,
            params_hash=parameters.parameters_hash(),
            original_manifest=source.manifest,
            requested=requested,
        )
        logger.append_keys(reexport_id=reexport_id)
        logger.info("Re-export requested", extra={"report_id": source.id, "job_id": job_id})
        metrics.add_metric(name="ReexportsRequested", unit="Count", value=1)
        return record, job

    def _wake(self, job: Job) -> None:
        try:
            self._queue.wake_generator(job)
        except Exception:
            # As for a new job: the job stays queued and JobDispatchFailed counts it.
            logger.exception("Could not queue the job for generation", extra={"job_id": job.id})
            metrics.add_metric(name="JobDispatchFailed", unit="Count", value=1)

    def _active(self, principal: Principal, original: StoredJob) -> Reexport | None:
        """The re-export the original names as active; None when that record turned out to be left over by a
        job that had already finished (it is then ended, and the original released, so the caller reads again)."""
        active_id = original.job.active_reexport_id or ""
        active = self._store.get_reexport(principal.tenant_id, active_id, consistent=True)
        if active is None:
            raise ConcurrentUpdate("The report's re-export is being set up; try again")
        if active.record.status.is_active:
            active = self._repair_if_orphaned(principal, active)
        if not active.record.status.is_active:
            # Ended (just now, or earlier without the original released): release it, and the caller reads again.
            self._store.release_original(principal.tenant_id, original.job.id, active_id)
            return None
        logger.info("Re-export already in progress", extra={"reexport_id": active_id})
        return active.record

    def _repair_if_orphaned(self, principal: Principal, stored: StoredReexport) -> StoredReexport:
        """An active record whose job has already finished (a fallback ended the job alone) ends as its job
        did, and releases the original, in one transaction conditioned on both. Returns the record as it is now."""
        record = stored.record
        job = self._store.get_job(record.tenant_id, record.job_id, consistent=True)
        if job is None or job.job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            return stored
        now = format_timestamp(now_utc())
        finished = job.job
        changes: dict[str, Any] = {"completed_at": now, "updated_at": now}
        details: dict[str, Any] = {"reexport_id": record.id, "job_id": record.job_id, "repaired": True}
        if finished.status is JobStatus.CANCELLED:
            changes["status"] = ReexportStatus.CANCELLED
            event_type = HistoryEventType.REEXPORT_CANCELLED
        else:
            event_type = HistoryEventType.REEXPORT_COMPLETED
            new_file = _file_of(finished) if finished.status is JobStatus.SUCCEEDED else None
            if new_file is not None:
                changes.update(success_changes(record, new_file, now))
                matches = changes["matches_original"]
                if not matches:
                    changes["comparison"] = ComparisonSummary(
                        compared=False, reason="the re-export was completed late; rows were not compared"
                    )
                details.update(matches_original=matches, sha256=new_file.sha256)
            else:
                code = finished.error_code or "INTERNAL"
                changes.update(
                    status=ReexportStatus.FAILED,
                    error_code=code,
                    error_message=finished.error_message or "The re-export's job ended without it",
                )
                details["error_code"] = code
            details.update(requested_by=record.requested_by, reason=record.reason)
        details["outcome"] = ReexportStatus(changes["status"]).value
        event = new_event(record.report_id, event_type, actor=SERVICE_ACTOR, details=details)
        try:
            self._store.end_orphaned_reexport(job, stored, changes, event)
        except StaleWrite:
            pass  # it moved meanwhile: read it again either way
        else:
            logger.warning(
                "A re-export left active by its finished job was ended",
                extra={"reexport_id": record.id, "job_status": finished.status.value},
            )
            metrics.add_metric(name="ReexportsRepaired", unit="Count", value=1)
        current = self._store.get_reexport(record.tenant_id, record.id, consistent=True)
        return current or stored

    def _load_report(self, principal: Principal, report_id: str) -> StoredJob:
        stored = None
        if _ID_RE.match(report_id):
            stored = self._store.get_job(principal.tenant_id, report_id, consistent=True)
        if stored is None:
            raise NotFound("Report not found")
        return stored

    def _load(self, principal: Principal, reexport_id: str, *, consistent: bool = False) -> StoredReexport:
        # Another tenant's re-export, a malformed id and a missing one all look the same from outside.
        stored = None
        if _ID_RE.match(reexport_id):
            stored = self._store.get_reexport(principal.tenant_id, reexport_id, consistent=consistent)
        if stored is None:
            raise NotFound("Re-export not found")
        logger.append_keys(reexport_id=reexport_id)
        return stored

    def _load_versioned(self, principal: Principal, reexport_id: str, expected_version: int) -> StoredReexport:
        stored = self._load(principal, reexport_id, consistent=True)
        if stored.version != expected_version:
            raise VersionConflict(
                f"The re-export is at version {stored.version}, not {expected_version}; read it again"
            )
        return stored

    def _explain_failed_write(self, principal: Principal, reexport_id: str, expected_version: int) -> None:
        current = self._load(principal, reexport_id, consistent=True)
        if current.version != expected_version:
            raise VersionConflict(
                f"The re-export is at version {current.version}, not {expected_version}; read it again"
            )
        if not current.record.status.is_active:
            raise InvalidTransition(f"A re-export that is {current.record.status.value} cannot take a result")
        raise ConcurrentUpdate("The re-export's job changed while the result was stored; try again")

    def _explain_failed_claim(self, principal: Principal, reexport_id: str, expected_version: int) -> None:
        current = self._load(principal, reexport_id, consistent=True)
        if current.version != expected_version:
            raise VersionConflict(
                f"The re-export is at version {current.version}, not {expected_version}; read it again"
            )
        if current.record.notification_sent_at is not None:
            raise InvalidTransition("The re-export's completion was already announced")
        raise ConcurrentUpdate("Another request is announcing the re-export's completion; read it again shortly")

    def _head_tenant_object(self, tenant_id: str, file_ref: StoreFileReference) -> dict[str, Any]:
        prefix = f"tenants/{tenant_id}/"
        if not file_ref.key.startswith(prefix) or any(part in ("", ".", "..") for part in file_ref.key.split("/")):
            raise ValidationFailed(f"new_file.key must name an object under {prefix}")
        try:
            head = self._s3.head_object(Bucket=self._settings.reports_bucket, Key=file_ref.key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                raise ValidationFailed("new_file.key names no stored object") from None
            raise
        if head["ContentLength"] != file_ref.size_bytes:
            raise ValidationFailed(
                f"new_file.size_bytes does not match the stored object ({head['ContentLength']} bytes)"
            )
        return head

    def _announce(self, record: Reexport) -> None:
        summary = lineage_summary(record)
        job_type = str(record.original_parameters.get("job_type", ""))
        response = self._events.put_events(
            Entries=[
                {
                    "EventBusName": self._settings.event_bus_name,
                    "Source": "report-export",
                    "DetailType": REEXPORT_COMPLETED_DETAIL_TYPE,
                    "Detail": canonical_json(summary),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the event: {json.dumps(response.get('Entries'))}")
        outcome = "completed" if record.status is ReexportStatus.SUCCEEDED else "failed"
        self._sns.publish(
            TopicArn=self._settings.report_topic_arn,
            Subject=f"Report re-export {outcome}",
            Message=f"A report re-export has {outcome}.\n\n{lineage_text(record)}",
            MessageAttributes={
                "tenant_id": {"DataType": "String", "StringValue": record.tenant_id},
                "status": {"DataType": "String", "StringValue": record.status.value},
                "job_type": {"DataType": "String", "StringValue": job_type or "unknown"},
            },
        )
        metrics.add_metric(name="ReexportsAnnounced", unit="Count", value=1)


def _backoff(attempt: int) -> None:
    """Full jitter: a random wait up to an exponentially growing cap, so colliding requests spread out."""
    time.sleep(random.uniform(0, min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2**attempt)))


def _file_of(job: Job) -> FileReference | None:
    if not job.file_path or job.sha256 is None or job.size_bytes is None:
        return None
    return FileReference(
        key=job.file_path,
        file_name=job.file_name,
        mime_type=job.mime_type,
        size_bytes=job.size_bytes,
        sha256=job.sha256,
        row_count=job.row_count,
    )


def _superseding(job: StoredJob | None, now: str) -> JobUpdate | None:
    """The regenerating job, once an internal service stored the result: a queued job is cancelled,
    a running one asked to stop (the generator then discards its own file)."""
    if job is None:
        return None
    if job.job.status is JobStatus.QUEUED:
        return versioned_update(
            job, expected_status=JobStatus.QUEUED, changes={"status": JobStatus.CANCELLED, "updated_at": now}
        )
    if job.job.status is JobStatus.RUNNING:
        # Only while it runs, not at the version read: every progress checkpoint bumps the version, so a
        # versioned write would keep losing. Whichever attempt runs it notices the cancel at its next checkpoint.
        return job_update(
            job.job.tenant_id,
            job.job.id,
            {"cancel_requested": True, "updated_at": now},
            condition="#status = :running",
            condition_names={"#status": "status"},
            condition_values={":running": JobStatus.RUNNING.value},
        )
    return None


@cache
def reexport_service() -> ReexportService:
    settings = get_settings()
    return ReexportService(
        settings,
        JobStore(clients.dynamodb(), settings.table_name),
        GenerateQueue(clients.sqs(), settings.generate_queue_url),
        CursorCodec(Signer(settings.signing_secret_parameter, purpose="list-cursor")),
        job_service(),
        download_service(),
        clients.s3(),
        clients.sns(),
        clients.events(),
    )
