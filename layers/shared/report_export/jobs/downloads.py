"""Download URLs: minted fresh on every request, short-lived, and each one an audit event (a log line
and an entry in the report's history, written before the URL is handed out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pydantic import Field

from report_export.aws import clients, secrets
from report_export.aws.dynamo.history import HistoryRepository
from report_export.aws.dynamo.table import Table
from report_export.aws.s3 import object_head, presigned_download_url
from report_export.core.auth import Principal
from report_export.core.errors import ReportExpired, ReportFileGone, ReportNotReady
from report_export.core.history import HistoryEventType, new_event
from report_export.core.models.common import JobStatus, ServiceModel, Timestamp, format_timestamp, now_utc
from report_export.core.models.jobs import Job
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings, get_settings
from report_export.core.signing import Signer
from report_export.jobs.links import DOWNLOAD_TOKEN_PURPOSE, DownloadTokens
from report_export.jobs.service import JobService, job_service


class DownloadLink(ServiceModel):
    download_url: str = Field(description="A presigned URL; fetch it before expires_at")
    expires_at: Timestamp


@dataclass(frozen=True, slots=True)
class Presigned:
    url: str
    expires_at: datetime


class DownloadService:
    def __init__(
        self, settings: Settings, s3: Any, tokens: DownloadTokens, history: HistoryRepository, jobs: JobService
    ) -> None:
        self._settings = settings
        self._s3 = s3
        self._tokens = tokens
        self._history = history
        self._jobs = jobs

    def download_link(self, principal: Principal, job_id: str) -> DownloadLink:
        job = self._jobs.get_job(principal, job_id)
        presigned = self._presign(job)
        self._audit(job.tenant_id, job.id, presigned, issued_to=principal.subject, via="api")
        return DownloadLink(download_url=presigned.url, expires_at=presigned.expires_at)

    def redirect_for_link(self, job_id: str, token: str) -> str:
        grant = self._tokens.verify(token, job_id=job_id, now=now_utc())
        job = self._jobs.get_job_of_tenant(grant.tenant_id, job_id)
        presigned = self._presign(job)
        self._audit(job.tenant_id, job.id, presigned, issued_to="signed-link", via="link")
        return presigned.url

    def file_link(
        self,
        tenant_id: str,
        job_id: str,
        *,
        key: str,
        file_name: str,
        expires_at: datetime | None,
        issued_to: str,
        details: dict[str, Any],
    ) -> Presigned:
        """A URL for a file named by reference (a re-export's result), audited on the job it belongs to.

        Raises ReportExpired once the file's expires_at has passed, ReportFileGone when the object is no
        longer in the bucket.
        """
        presigned = self._presign_key(key, file_name, expires_at)
        self._audit(tenant_id, job_id, presigned, issued_to=issued_to, via="reexport", details=details)
        return presigned

    def _presign(self, job: Job) -> Presigned:
        if job.status is not JobStatus.SUCCEEDED or not job.file_path or not job.file_name:
            raise ReportNotReady(f"Report is not ready (the job is {job.status.value})")
        held_version = job.legal_hold.version_of(job.file_path) if job.legal_hold is not None else None
        if held_version is not None:
            # Held: the version under hold is there whatever the lifecycle rule did since expires_at.
            return self._presign_key(job.file_path, job.file_name, None, version_id=held_version)
        return self._presign_key(job.file_path, job.file_name, job.expires_at)

    def _presign_key(
        self, key: str, file_name: str, expires_at: datetime | None, *, version_id: str | None = None
    ) -> Presigned:
        """A URL that lives REPORT_DOWNLOAD_TTL_SEC, and never past the file's expires_at: only until then is
        the file sure to be in the bucket (the lifecycle rule may delete it after)."""
        now = now_utc()
        ttl = self._settings.download_ttl_seconds
        if expires_at is not None:
            ttl = min(ttl, int((expires_at - now).total_seconds()))
            if ttl < 1:
                raise ReportExpired("The report file has expired; re-export the report to get it again")
        bucket = self._settings.reports_bucket
        if object_head(self._s3, bucket=bucket, key=key, version_id=version_id) is None:
            raise ReportFileGone("The report file no longer exists; re-export the report")
        url = presigned_download_url(
            self._s3, bucket=bucket, key=key, file_name=file_name, ttl_seconds=ttl, version_id=version_id
        )
        return Presigned(url=url, expires_at=now + timedelta(seconds=ttl))

    def _audit(
        self,
        tenant_id: str,
        job_id: str,
        presigned: Presigned,
        *,
        issued_to: str,
        via: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        # Written before the URL leaves: a URL that could not be recorded is not handed out.
        self._history.put(
            tenant_id,
            new_event(
                job_id,
                HistoryEventType.DOWNLOAD_URL_ISSUED,
                actor=issued_to,
                details={"via": via, "expires_at": format_timestamp(presigned.expires_at), **(details or {})},
            ),
        )
        logger.info(
            "Download URL issued",
            extra={"audit": "download_url_issued", "job_id": job_id, "issued_to": issued_to, "via": via},
        )
        metrics.add_metric(name="DownloadUrlsIssued", unit="Count", value=1)


@cache
def download_service() -> DownloadService:
    settings = get_settings()
    return DownloadService(
        settings,
        clients.s3(),
        DownloadTokens(
            Signer(secrets.secret_source(settings.signing_secret_parameter), purpose=DOWNLOAD_TOKEN_PURPOSE)
        ),
        HistoryRepository(Table(clients.dynamodb(), settings.table_name)),
        job_service(),
    )
