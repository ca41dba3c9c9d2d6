"""Repair: a re-export still active although its job has finished (left so by data written before
jobs and re-exports ended together, or by a fallback that could not end both) ends as its job did,
and the original is released, in one transaction conditioned on both."""

from __future__ import annotations

from report_export.aws.dynamo.codecs import StoredReexport
from report_export.aws.dynamo.jobs import JobRepository
from report_export.aws.dynamo.reexports import ReexportRepository
from report_export.aws.dynamo.table import StaleWrite
from report_export.core.history import SERVICE_ACTOR
from report_export.core.models.common import JobStatus
from report_export.core.observability import logger, metrics
from report_export.jobs.ending import Guard, JobEnding
from report_export.jobs.outcomes import ending_status, outcome_of


class Repair:
    def __init__(self, jobs: JobRepository, reexports: ReexportRepository, ending: JobEnding) -> None:
        self._jobs = jobs
        self._reexports = reexports
        self._ending = ending

    def if_orphaned(self, stored: StoredReexport) -> StoredReexport:
        """The record as it is now: ended as its finished job did, or as it was."""
        record = stored.record
        job = self._jobs.get(record.tenant_id, record.job_id, consistent=True)
        if job is None or job.job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            return stored
        outcome = outcome_of(job.job)
        ending = self._ending.plan(
            job,
            outcome,
            guard=Guard.ENDED,
            reexport=stored,
            at_version=True,
            actor=SERVICE_ACTOR,
            context={"repaired": True, "outcome": ending_status(outcome).value},
        )
        try:
            self._ending.apply(ending)
        except StaleWrite:
            pass  # it moved meanwhile: read it again either way
        else:
            logger.warning(
                "A re-export left active by its finished job was ended",
                extra={"reexport_id": record.id, "job_status": job.job.status.value},
            )
            metrics.add_metric(name="ReexportsRepaired", unit="Count", value=1)
        return self._reexports.get(record.tenant_id, record.id, consistent=True) or stored
