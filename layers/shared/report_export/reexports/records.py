"""Reading re-export records and their reports for a caller: another tenant's, a malformed id and a
missing one all look the same from outside."""

from __future__ import annotations

import re

from report_export.aws import clients
from report_export.aws.dynamo.codecs import StoredJob, StoredReexport
from report_export.aws.dynamo.jobs import JobRepository
from report_export.aws.dynamo.reexports import ReexportRepository
from report_export.aws.dynamo.table import Table
from report_export.core.auth import Principal
from report_export.core.errors import NotFound, VersionConflict
from report_export.core.models.common import JOB_ID_PATTERN
from report_export.core.observability import logger
from report_export.core.settings import get_settings
from report_export.jobs.ending import JobEnding, job_ending

_ID_RE = re.compile(JOB_ID_PATTERN)


class Records:
    def __init__(self, jobs: JobRepository, reexports: ReexportRepository) -> None:
        self.jobs = jobs
        self.reexports = reexports

    def report(self, principal: Principal, report_id: str) -> StoredJob:
        stored = self.jobs.get(principal.tenant_id, report_id, consistent=True) if _ID_RE.match(report_id) else None
        if stored is None:
            raise NotFound("Report not found")
        return stored

    def load(self, principal: Principal, reexport_id: str, *, consistent: bool = False) -> StoredReexport:
        stored = None
        if _ID_RE.match(reexport_id):
            stored = self.reexports.get(principal.tenant_id, reexport_id, consistent=consistent)
        if stored is None:
            raise NotFound("Re-export not found")
        logger.append_keys(reexport_id=reexport_id)
        return stored

    def load_versioned(self, principal: Principal, reexport_id: str, expected_version: int) -> StoredReexport:
        stored = self.load(principal, reexport_id, consistent=True)
        check_version(stored, expected_version)
        return stored


def check_version(stored: StoredReexport, expected_version: int) -> None:
    if stored.version != expected_version:
        raise VersionConflict(f"The re-export is at version {stored.version}, not {expected_version}; read it again")


def build_records() -> tuple[Records, JobEnding]:
    """The records and the ending module on this cold start's table client."""
    settings = get_settings()
    table = Table(clients.dynamodb(), settings.table_name)
    jobs, reexports = JobRepository(table), ReexportRepository(table)
    return Records(jobs, reexports), job_ending(settings, table)
