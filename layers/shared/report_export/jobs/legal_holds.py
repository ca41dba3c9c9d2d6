"""Legal holds: a tenant admin keeps a report's file, and every file of its lineage (its re-exports' new
files), beyond their expiry, for as long as a case or an audit needs them.

Each file's current version is put under an S3 Object Lock legal hold, which no delete (the lifecycle
rule's included) can pass; the job items say so, which keeps their records too and lets their downloads
answer past expires_at (from the held version). The S3 holds come first and go last: a request that
stops half way leaves files held that the records do not yet say are, never the other way round, and
repeating the request completes it.
"""

from __future__ import annotations

import unicodedata
from datetime import timedelta
from functools import cache
from typing import Any

from report_export.aws import clients
from report_export.aws.dynamo.legal_holds import LegalHoldRepository
from report_export.aws.dynamo.reexports import ReexportRepository
from report_export.aws.dynamo.table import Table
from report_export.aws.object_lock import lift_hold, place_hold
from report_export.core.auth import Principal
from report_export.core.errors import (
    HeldThroughLineage,
    NotFound,
    NotHeld,
    ReportFileGone,
    ReportNotReady,
    ValidationFailed,
)
from report_export.core.history import HistoryEventType, new_event
from report_export.core.models.common import JobStatus, now_utc
from report_export.core.models.jobs import HeldFile, Job, LegalHold
from report_export.core.models.reexports import ReexportStatus
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings, get_settings
from report_export.jobs.service import JobService, job_service

_LINEAGE_PAGE = 100


class LegalHolds:
    def __init__(
        self,
        settings: Settings,
        s3: Any,
        jobs: JobService,
        holds: LegalHoldRepository,
        reexports: ReexportRepository,
    ) -> None:
        self._settings = settings
        self._s3 = s3
        self._jobs = jobs
        self._holds = holds
        self._reexports = reexports

    def place(self, principal: Principal, job_id: str, reason: str) -> LegalHold:
        """Hold the report's file and its lineage's; a report held already answers with its hold as it is."""
        reason = _checked_reason(reason)
        job = self._jobs.get_job(principal, job_id)
        if job.legal_hold is not None:
            return job.legal_hold
        if job.status is not JobStatus.SUCCEEDED or not job.file_path:
            raise ReportNotReady(f"Only a report with a file can be held (the job is {job.status.value})")
        own_version = place_hold(self._s3, bucket=self._settings.reports_bucket, key=job.file_path)
        if own_version is None:
            raise ReportFileGone("The report file no longer exists; nothing is left to hold")
        held, gone = [HeldFile(job_id=job.id, key=job.file_path, version_id=own_version)], []
        for lineage_job_id, key in self._lineage_files(job):
            version = place_hold(self._s3, bucket=self._settings.reports_bucket, key=key)
            if version is None:
                gone.append({"job_id": lineage_job_id, "key": key})
            else:
                held.append(HeldFile(job_id=lineage_job_id, key=key, version_id=version))
        hold = LegalHold(report_id=job.id, reason=reason, placed_by=principal.subject, placed_at=now_utc(), files=held)
        recorded = new_event(
            job.id,
            HistoryEventType.LEGAL_HOLD_PLACED,
            actor=principal.subject,
            details={"reason": reason, "files": [file.model_dump() for file in held], "gone": gone or None},
        )
        retention_ttl = self._retention_ttl()
        if not self._holds.place(job.tenant_id, hold, recorded, retention_ttl=retention_ttl):
            # Another request held it at the same moment: theirs is the hold (the files are held either way).
            return self._jobs.get_job(principal, job_id).legal_hold or hold
        for file in held[1:]:
            self._holds.cover(
                job.tenant_id, file.job_id, hold.model_copy(update={"files": [file]}), retention_ttl=retention_ttl
            )
        metrics.add_metric(name="LegalHoldsPlaced", unit="Count", value=1)
        logger.info("Legal hold placed", extra={"audit": "legal_hold_placed", "job_id": job.id, "files": len(held)})
        return hold

    def lift(self, principal: Principal, job_id: str, reason: str) -> None:
        reason = _checked_reason(reason)
        job = self._jobs.get_job(principal, job_id)
        hold = job.legal_hold
        if hold is None:
            raise NotHeld("The report is not under legal hold")
        if hold.report_id != job.id:
            raise HeldThroughLineage(
                f"The file is held with the report it re-exports ({hold.report_id}); lift it there"
            )
        for file in hold.files:
            if not self._held_otherwise(principal, file, by=job.id):
                lift_hold(self._s3, bucket=self._settings.reports_bucket, key=file.key, version_id=file.version_id)
        for file in hold.files:
            if file.job_id != job.id:
                self._holds.uncover(job.tenant_id, file.job_id, report_id=job.id)
        recorded = new_event(
            job.id,
            HistoryEventType.LEGAL_HOLD_LIFTED,
            actor=principal.subject,
            details={"reason": reason, "held_since": hold.placed_at.isoformat(), "placed_by": hold.placed_by},
        )
        if not self._holds.lift(job.tenant_id, job.id, recorded):
            raise NotHeld("The report is not under legal hold")
        metrics.add_metric(name="LegalHoldsLifted", unit="Count", value=1)
        logger.info("Legal hold lifted", extra={"audit": "legal_hold_lifted", "job_id": job.id})

    def _lineage_files(self, job: Job) -> list[tuple[str, str]]:
        """(job id, key) of each succeeded re-export's new file, in the tenant's part of the bucket."""
        tenant_prefix = f"tenants/{job.tenant_id}/"
        found, after = [], None
        while True:
            page, more = self._reexports.query(
                job.tenant_id,
                status=ReexportStatus.SUCCEEDED,
                report_id=job.id,
                limit=_LINEAGE_PAGE,
                after_reexport_id=after,
            )
            for stored in page:
                new_file = stored.record.new_file
                if new_file is not None and new_file.key.startswith(tenant_prefix) and new_file.key != job.file_path:
                    found.append((stored.record.job_id, new_file.key))
            if not more:
                return found
            after = page[-1].record.id

    def _held_otherwise(self, principal: Principal, file: HeldFile, *, by: str) -> bool:
        """Whether a hold other than `by`'s keeps this version: its own job's, or that of the report its job
        re-exports."""
        own = self._job_or_none(principal, file.job_id)
        others = {file.job_id, *([own.reexport_of] if own is not None and own.reexport_of else [])} - {by}
        for other_id in others:
            other = own if other_id == file.job_id else self._job_or_none(principal, other_id)
            hold = other.legal_hold if other is not None else None
            if hold is not None and hold.report_id != by and hold.version_of(file.key) == file.version_id:
                return True
        return False

    def _job_or_none(self, principal: Principal, job_id: str) -> Job | None:
        try:
            return self._jobs.get_job(principal, job_id)
        except NotFound:
            return None

    def _retention_ttl(self) -> int:
        return int((now_utc() + timedelta(days=self._settings.record_retention_days)).timestamp())


# Bidirectional overrides and isolates: they make a history entry read other than it is written.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _checked_reason(reason: str) -> str:
    """The reason as the history keeps it: printable text (emoji and any script welcome), not blank."""
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("reason: say why")
    if any(unicodedata.category(c) in ("Cc", "Cs", "Cn", "Co") or c in _BIDI_CONTROLS for c in reason):
        raise ValidationFailed("reason: control characters and direction overrides are not allowed")
    return reason


@cache
def legal_holds() -> LegalHolds:
    settings = get_settings()
    table = Table(clients.dynamodb(), settings.table_name)
    return LegalHolds(settings, clients.s3(), job_service(), LegalHoldRepository(table), ReexportRepository(table))
