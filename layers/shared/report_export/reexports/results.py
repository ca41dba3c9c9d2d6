"""The internal-service side of re-exports (PUT): store a result file an internal service produced,
and announce a finished re-export, each at the version the caller read (optimistic locking)."""

from __future__ import annotations

import posixpath
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from uuid6 import uuid7

from report_export.aws import clients
from report_export.aws.announcements import AnnouncementRefused, Publisher
from report_export.aws.dynamo.codecs import StoredReexport
from report_export.aws.dynamo.table import StaleWrite
from report_export.aws.s3 import ObjectChanged, file_expiry, object_head, refresh_object
from report_export.core.auth import Principal
from report_export.core.errors import (
    ConcurrentUpdate,
    InvalidTransition,
    ServiceUnavailable,
    ValidationFailed,
    VersionConflict,
)
from report_export.core.models.common import (
    Compression,
    FileCheck,
    FileReference,
    JobStatus,
    format_timestamp,
    now_utc,
)
from report_export.core.models.jobs import Job
from report_export.core.models.reexports import Reexport, ReexportStatus, StoreFileReference, UpdateReexportRequest
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings, get_settings
from report_export.jobs.ending import Guard, JobEnding, Superseded
from report_export.reexports.lineage import REEXPORT_COMPLETED_DETAIL_TYPE, lineage_summary, lineage_text
from report_export.reexports.records import Records, build_records, check_version

# A claim to announce older than this was abandoned (its request died): another request may take it over.
_ANNOUNCEMENT_CLAIM_SECONDS = 300
# How an internal service's result ends the job regenerating the report, by the job's status.
_SUPERSEDING_GUARDS = {JobStatus.QUEUED: Guard.VERSION, JobStatus.RUNNING: Guard.RUNNING}


class ReexportResults:
    def __init__(self, settings: Settings, records: Records, ending: JobEnding, s3: Any, publisher: Publisher) -> None:
        self._settings = settings
        self._records = records
        self._ending = ending
        self._s3 = s3
        self._publisher = publisher

    def update_reexport(
        self, principal: Principal, reexport_id: str, request: UpdateReexportRequest, *, expected_version: int
    ) -> StoredReexport:
        """PUT: store a result file, announce the completion, or both, at the version the caller read."""
        stored: StoredReexport | None = None
        if request.new_file is not None:
            stored = self.store_reexport_result(
                principal, reexport_id, request.new_file, expected_version=expected_version
            )
            expected_version = stored.version
        if request.notification_sent:
            stored = self.notify_reexport_complete(principal, reexport_id, expected_version=expected_version)
        if stored is None:  # the request model already requires one of the two
            raise ValidationFailed("give new_file, notification_sent or both")
        return stored

    def store_reexport_result(
        self, principal: Principal, reexport_id: str, file_ref: StoreFileReference, *, expected_version: int
    ) -> StoredReexport:
        """Record a result file an internal service produced: pending/running → succeeded, the original
        released, the regenerating job cancelled (superseded), in one transaction.

        The object may have been created long ago, and the lifecycle rule deletes it by its creation date: it is
        first copied onto itself (a new creation date), and the record's expires_at is counted from that copy.
        So the record never promises more than the bucket keeps; a copy whose transaction then fails only keeps
        the file longer."""
        stored = self._records.load_versioned(principal, reexport_id, expected_version)
        record = stored.record
        if not record.status.is_active:
            raise InvalidTransition(f"A re-export that is {record.status.value} cannot take a result")
        self._check_not_the_original(record, file_ref.key)
        head = self._head_tenant_object(principal.tenant_id, file_ref)
        job = self._records.jobs.get(record.tenant_id, record.job_id, consistent=True)
        if job is None:
            # Written in one transaction with the record, a job never goes missing on its own: this will not heal.
            raise InvalidTransition("The re-export's job no longer exists, so its result cannot be stored")
        new_file = self._vouched_for(file_ref, head, job.job)
        expires_at = self._keep_for_retention(file_ref.key, head)
        ending = self._ending.plan(
            job,
            Superseded(new_file, by=principal.subject, expires_at=expires_at),
            guard=_SUPERSEDING_GUARDS.get(job.job.status, Guard.ENDED),
            reexport=stored,
            at_version=True,
            context={"via": "internal_service"},
        )
        try:
            self._ending.apply(ending)
        except StaleWrite:
            self._explain_failed_write(principal, reexport_id, expected_version)
        logger.info("Re-export result stored by an internal service", extra={"reexport_id": record.id})
        metrics.add_metric(name="ReexportResultsStored", unit="Count", value=1)
        return self._records.load(principal, reexport_id, consistent=True)

    def notify_reexport_complete(
        self, principal: Principal, reexport_id: str, *, expected_version: int
    ) -> StoredReexport:
        """Announce a finished re-export (EventBridge, SNS) with its lineage, then record that it was sent."""
        stored = self._records.load_versioned(principal, reexport_id, expected_version)
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
        reexports = self._records.reexports
        try:
            reexports.claim_announcement(
                record.tenant_id,
                record.id,
                expected_version=stored.version,
                marker=marker,
                stale_before=format_timestamp(moment - timedelta(seconds=_ANNOUNCEMENT_CLAIM_SECONDS)),
            )
        except StaleWrite:
            self._explain_failed_claim(principal, reexport_id, expected_version)
        try:
            self._announce(stored)
        except (ClientError, BotoCoreError, AnnouncementRefused):
            logger.exception("Announcing the re-export's completion failed", extra={"reexport_id": record.id})
            reexports.release_announcement(record.tenant_id, record.id, marker=marker)
            raise ServiceUnavailable(
                "The re-export's completion could not be announced right now; try again with the same version"
            ) from None
        try:
            updated = reexports.mark_announced(
                record.tenant_id,
                record.id,
                expected_version=stored.version,
                marker=marker,
                now=format_timestamp(now_utc()),
            )
        except StaleWrite:
            raise VersionConflict("The re-export changed while its completion was announced; read it again") from None
        logger.info("Re-export completion announced", extra={"reexport_id": record.id})
        return updated

    def _announce(self, stored: StoredReexport) -> None:
        record = stored.record
        outcome = "completed" if record.status is ReexportStatus.SUCCEEDED else "failed"
        self._publisher.publish(
            detail_type=REEXPORT_COMPLETED_DETAIL_TYPE,
            detail=lineage_summary(record),
            subject=f"Report re-export {outcome}",
            message=f"A report re-export has {outcome}.\n\n{lineage_text(record)}",
            attributes={
                "tenant_id": record.tenant_id,
                "status": record.status.value,
                "job_type": str(record.original_parameters.get("job_type", "")) or "unknown",
                "carries_link": "false",  # the lineage names files by key and sha256, never by a link
            },
        )
        metrics.add_metric(name="ReexportsAnnounced", unit="Count", value=1)

    def _explain_failed_write(self, principal: Principal, reexport_id: str, expected_version: int) -> None:
        current = self._records.load(principal, reexport_id, consistent=True)
        check_version(current, expected_version)
        if not current.record.status.is_active:
            raise InvalidTransition(f"A re-export that is {current.record.status.value} cannot take a result")
        raise ConcurrentUpdate("The re-export's job changed while the result was stored; try again")

    def _explain_failed_claim(self, principal: Principal, reexport_id: str, expected_version: int) -> None:
        current = self._records.load(principal, reexport_id, consistent=True)
        check_version(current, expected_version)
        if current.record.notification_sent_at is not None:
            raise InvalidTransition("The re-export's completion was already announced")
        raise ConcurrentUpdate("Another request is announcing the re-export's completion; read it again shortly")

    def _keep_for_retention(self, key: str, head: dict[str, Any]) -> datetime:
        """Refreshes the object's creation date (its bytes and headers unchanged) and answers the expiry it allows."""
        try:
            stored_at = refresh_object(self._s3, bucket=self._settings.reports_bucket, key=key, head=head)
        except ObjectChanged:
            raise ConcurrentUpdate(
                "Another object was stored under new_file.key while the result was stored; try again"
            ) from None
        except (ClientError, BotoCoreError):
            logger.exception("The result file could not be refreshed for its retention", extra={"key": key})
            raise ServiceUnavailable(
                "The result file could not be kept for its retention right now; try again with the same version"
            ) from None
        if stored_at is None:
            raise ValidationFailed("new_file.key names no stored object (it was deleted while the result was stored)")
        return file_expiry(stored_at, self._settings.retention_days)

    def _check_not_the_original(self, record: Reexport, key: str) -> None:
        # The original's own file (or any attempt's file of its job) would make the lineage say "matches the
        # original" without anything having been produced again.
        original = record.original_file
        if (original is not None and key == original.key) or key.startswith(
            f"tenants/{record.tenant_id}/jobs/{record.report_id}/"
        ):
            raise ValidationFailed("new_file.key must name a new file, not the original report's")

    def _vouched_for(self, file_ref: StoreFileReference, head: dict[str, Any], job: Job) -> FileReference:
        """The file with the service's own figures, read from the object; the caller's must agree with them."""
        if head["ContentLength"] > self._settings.reexport_result_max_bytes:
            raise ValidationFailed(
                f"new_file is larger than the {self._settings.reexport_result_max_bytes} bytes the service reads "
                "to vouch for a result"
            )
        # Read only by the PUT that records a result: kept out of the API's cold start.
        from report_export.reexports.verification import ObjectReplaced, measure_stored_file

        gzipped = job.compression is Compression.GZIP
        try:
            measured = measure_stored_file(
                self._s3,
                bucket=self._settings.reports_bucket,
                key=file_ref.key,
                etag=head["ETag"],
                report_format=job.format,
                gzipped=gzipped,
            )
        except ObjectReplaced:
            raise ConcurrentUpdate(
                "Another object was stored under new_file.key while the result was stored; try again"
            ) from None
        except (ClientError, BotoCoreError):
            logger.exception("The result file could not be read to check it", extra={"key": file_ref.key})
            raise ServiceUnavailable(
                "The result file could not be read to check it right now; try again with the same version"
            ) from None
        if measured is None:
            raise ValidationFailed("new_file.key names no stored object")
        for name, claimed, actual in (
            ("size_bytes", file_ref.size_bytes, measured.size_bytes),
            ("sha256", file_ref.sha256, measured.sha256),
            ("row_count", file_ref.row_count, measured.row_count),
        ):
            if claimed != actual:
                raise ValidationFailed(f"new_file.{name} does not match the stored object")
        return FileReference(
            key=file_ref.key,
            file_name=posixpath.basename(file_ref.key),
            mime_type=head.get("ContentType"),
            size_bytes=measured.size_bytes,
            sha256=measured.sha256,
            row_count=measured.row_count,
            check=FileCheck(
                checked_at=now_utc(),
                read_as=job.format,
                gzip=gzipped,
                checked=[
                    "an object under the tenant's prefix",
                    "not the original report's file",
                    "sha256, size and row count computed by the service from the object",
                ],
            ),
        )

    def _head_tenant_object(self, tenant_id: str, file_ref: StoreFileReference) -> dict[str, Any]:
        prefix = f"tenants/{tenant_id}/"
        if not file_ref.key.startswith(prefix) or any(part in ("", ".", "..") for part in file_ref.key.split("/")):
            raise ValidationFailed(f"new_file.key must name an object under {prefix}")
        head = object_head(self._s3, bucket=self._settings.reports_bucket, key=file_ref.key)
        if head is None:
            raise ValidationFailed("new_file.key names no stored object")
        return head


@cache
def reexport_results() -> ReexportResults:
    settings = get_settings()
    records, ending = build_records()
    publisher = Publisher(
        clients.events(), clients.sns(), event_bus_name=settings.event_bus_name, topic_arn=settings.report_topic_arn
    )
    return ReexportResults(settings, records, ending, clients.s3(), publisher)
