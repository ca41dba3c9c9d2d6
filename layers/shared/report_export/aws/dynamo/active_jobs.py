"""The tenant's active jobs (queued or running), held exactly: the set a job enters in the transaction that
creates it and leaves in the one that ends it, so a burst of creates cannot pass the tenant's limit."""

from __future__ import annotations

from report_export.aws.dynamo import keys
from report_export.aws.dynamo.table import Table
from report_export.aws.dynamo.updates import ACTIVE_JOBS_ATTRIBUTE, active_jobs_leave
from report_export.core.models.common import JobStatus
from report_export.core.observability import logger, metrics

_ACTIVE_STATUSES = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)
# BatchGetItem reads at most this many keys per request.
_BATCH = 100


class ActiveJobs:
    def __init__(self, table: Table) -> None:
        self.table = table

    def ids(self, tenant_id: str) -> set[str]:
        item = self.table.get(keys.active_jobs_key(tenant_id), consistent=True)
        return set(item[ACTIVE_JOBS_ATTRIBUTE]["SS"]) if item and ACTIVE_JOBS_ATTRIBUTE in item else set()

    def has_room(self, tenant_id: str, *, most: int) -> bool:
        """Whether one more job may be created. A full set is checked against the jobs themselves first:
        an id whose job has ended (or is gone) no longer holds a place, and is removed."""
        held = self.ids(tenant_id)
        if len(held) < most:
            return True
        ended = self._ended(tenant_id, sorted(held))
        if ended:
            logger.warning("Ended jobs were still counted as active", extra={"count": len(ended)})
            metrics.add_metric(name="ActiveJobsRepaired", unit="Count", value=len(ended))
            self.table.client.update_item(TableName=self.table.name, **active_jobs_leave(tenant_id, ended))
        return len(held) - len(ended) < most

    def _ended(self, tenant_id: str, job_ids: list[str]) -> list[str]:
        # Read consistently, so that a job created a moment ago is seen as it is.
        statuses: dict[str, str | None] = {}
        for start in range(0, len(job_ids), _BATCH):
            batch = [keys.job_key(tenant_id, job_id) for job_id in job_ids[start : start + _BATCH]]
            for item in self.table.get_many(batch, consistent=True):
                statuses[item["SK"]["S"].removeprefix(keys.JOB_PREFIX)] = item.get("status", {}).get("S")
        for job_id in job_ids:
            if job_id not in statuses:
                # Not in the batch's answer: gone (its record expired after it ended), or left unprocessed.
                item = self.table.get(keys.job_key(tenant_id, job_id), consistent=True)
                statuses[job_id] = item.get("status", {}).get("S") if item else None
        return [job_id for job_id in job_ids if statuses[job_id] not in _ACTIVE_STATUSES]
