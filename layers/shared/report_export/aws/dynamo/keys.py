"""The table's keys: one table, items keyed by tenant so that every access pattern is a Query or a GetItem.

  job             PK=TENANT#{tenant}  SK=JOB#{job_id}                 (UUIDv7 ids sort by creation time)
  idempotency key PK=TENANT#{tenant}  SK=IDEMPOTENCY#{key}            (claimed in the job's transaction)
  re-export       PK=TENANT#{tenant}  SK=REEXPORT#{reexport_id}       (UUIDv7)
  history entry   PK=TENANT#{tenant}  SK=HISTORY#{job_id}#{entry_id}  (UUIDv7: a report's entries in time order)
  schedule        PK=TENANT#{tenant}  SK=SCHEDULE#{schedule_id}       (UUIDv7)
  schedule run    PK=TENANT#{tenant}  SK=SCHEDULE_RUN#{schedule_id}#{start_date}#{job_id}  (by period)
  schedule count  PK=TENANT#{tenant}  SK=SCHEDULE_COUNT                (in each create's and delete's transaction)
  active jobs     PK=TENANT#{tenant}  SK=ACTIVE_JOBS                   (the ids of its queued and running jobs: in
                                                                       each create's and each ending's transaction)
Indexes for the list filters, so a filtered page is read from an index instead of filtered away:
  ByStatus  GSI1PK=TENANT#{tenant}#STATUS#{status}            GSI1SK=JOB#{job_id}
            GSI1PK=TENANT#{tenant}#REEXPORT_STATUS#{status}   GSI1SK=REEXPORT#{reexport_id}
  ByType    GSI2PK=TENANT#{tenant}#TYPE#{job_type}            GSI2SK=JOB#{job_id}
            GSI2PK=TENANT#{tenant}#REEXPORTS_OF#{job_id}      GSI2SK=REEXPORT#{reexport_id}
A sparse index of the jobs that are not finished, for the sweeper (items leave it when they end):
  Unfinished  GSI3PK=UNFINISHED#{queued|running}  GSI3SK={due}#{tenant}#{job_id}
            due: the lease's end for a running job, the last change for a queued one (ISO timestamps sort)
  The same index holds the schedules whose change is not yet applied to EventBridge Scheduler:
            GSI3PK=SCHEDULE_SYNC  GSI3SK={since}#{tenant}#{schedule_id}
  and the jobs that ended (succeeded or failed) but were not yet announced; they leave it when their
  notification is recorded (notification_sent_at):
            GSI3PK=UNANNOUNCED  GSI3SK={due}#{tenant}#{job_id}   (due: when it ended, or was last re-announced)
A tenant id never holds "#", so the prefixes cannot collide.
"""

from __future__ import annotations

from typing import Any

from report_export.core.models.common import JobStatus, JobType
from report_export.core.models.reexports import ReexportStatus

BY_STATUS_INDEX = "ByStatus"
BY_TYPE_INDEX = "ByType"
UNFINISHED_INDEX = "Unfinished"
UNFINISHED_ATTRIBUTES = ("GSI3PK", "GSI3SK")
KEY_ATTRIBUTES = ("PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", *UNFINISHED_ATTRIBUTES)
HEALTH_KEY = {"PK": "HEALTH", "SK": "HEALTH"}


def tenant_pk(tenant_id: str) -> str:
    return f"TENANT#{tenant_id}"


JOB_PREFIX = "JOB#"


def job_sk(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}"


def idempotency_sk(key: str) -> str:
    return f"IDEMPOTENCY#{key}"


def status_pk(tenant_id: str, status: JobStatus) -> str:
    return f"TENANT#{tenant_id}#STATUS#{status.value}"


def type_pk(tenant_id: str, job_type: JobType) -> str:
    return f"TENANT#{tenant_id}#TYPE#{job_type.value}"


def reexport_sk(reexport_id: str) -> str:
    return f"REEXPORT#{reexport_id}"


def reexport_status_pk(tenant_id: str, status: ReexportStatus) -> str:
    return f"TENANT#{tenant_id}#REEXPORT_STATUS#{status.value}"


def reexports_of_pk(tenant_id: str, report_id: str) -> str:
    return f"TENANT#{tenant_id}#REEXPORTS_OF#{report_id}"


def history_prefix(job_id: str) -> str:
    return f"HISTORY#{job_id}#"


def history_entry_key(tenant_id: str, job_id: str, event_id: str) -> dict[str, Any]:
    return {"PK": {"S": tenant_pk(tenant_id)}, "SK": {"S": history_prefix(job_id) + event_id}}


def history_chain_key(tenant_id: str, job_id: str) -> dict[str, Any]:
    """The head of a report's history chain: how many entries are sealed, and the last one's hash."""
    return {"PK": {"S": tenant_pk(tenant_id)}, "SK": {"S": f"HISTORY_CHAIN#{job_id}"}}


# History entries not yet linked into their report's chain, in the sparse index the sweeper reads.
UNSEALED_PK = "UNSEALED"


def unsealed_sk(at: str, tenant_id: str, job_id: str, event_id: str) -> str:
    return f"{at}#{tenant_id}#{job_id}#{event_id}"


def unfinished_pk(status: JobStatus) -> str:
    return f"UNFINISHED#{status.value}"


UNANNOUNCED_PK = "UNANNOUNCED"


def unfinished_sk(due: str, tenant_id: str, job_id: str) -> str:
    return f"{due}#{tenant_id}#{job_id}"


SCHEDULE_SYNC_PK = "SCHEDULE_SYNC"


def schedule_sk(schedule_id: str) -> str:
    return f"SCHEDULE#{schedule_id}"


def schedule_runs_prefix(schedule_id: str) -> str:
    return f"SCHEDULE_RUN#{schedule_id}#"


def schedule_run_sk(schedule_id: str, start_date: str, job_id: str) -> str:
    return f"{schedule_runs_prefix(schedule_id)}{start_date}#{job_id}"


def schedule_sync_sk(since: str, tenant_id: str, schedule_id: str) -> str:
    return f"{since}#{tenant_id}#{schedule_id}"


SCHEDULE_COUNT_SK = "SCHEDULE_COUNT"


def schedule_count_key(tenant_id: str) -> dict[str, Any]:
    return {"PK": {"S": tenant_pk(tenant_id)}, "SK": {"S": SCHEDULE_COUNT_SK}}


ACTIVE_JOBS_SK = "ACTIVE_JOBS"


def active_jobs_key(tenant_id: str) -> dict[str, Any]:
    return {"PK": {"S": tenant_pk(tenant_id)}, "SK": {"S": ACTIVE_JOBS_SK}}


def schedule_key(tenant_id: str, schedule_id: str) -> dict[str, Any]:
    return {"PK": {"S": tenant_pk(tenant_id)}, "SK": {"S": schedule_sk(schedule_id)}}


def job_key(tenant_id: str, job_id: str) -> dict[str, Any]:
    """The job item's key, typed as DynamoDB takes it."""
    return {"PK": {"S": tenant_pk(tenant_id)}, "SK": {"S": job_sk(job_id)}}


def reexport_key(tenant_id: str, reexport_id: str) -> dict[str, Any]:
    return {"PK": {"S": tenant_pk(tenant_id)}, "SK": {"S": reexport_sk(reexport_id)}}


def subscription_sk(subscription_id: str) -> str:
    return f"SUBSCRIPTION#{subscription_id}"


def subscription_key(tenant_id: str, subscription_id: str) -> dict[str, Any]:
    return {"PK": {"S": tenant_pk(tenant_id)}, "SK": {"S": subscription_sk(subscription_id)}}


SUBSCRIPTION_COUNT_SK = "SUBSCRIPTION_COUNT"


def subscription_count_key(tenant_id: str) -> dict[str, Any]:
    return {"PK": {"S": tenant_pk(tenant_id)}, "SK": {"S": SUBSCRIPTION_COUNT_SK}}


# One SNS subscription per endpoint and protocol on the topic, whichever tenant asked for it: SNS keeps one
# filter policy a subscription, so an endpoint is claimed by the first subscription that names it.
SUBSCRIPTION_ENDPOINT_PK = "SUBSCRIPTION_ENDPOINT"


def subscription_endpoint_key(protocol: str, endpoint_digest: str) -> dict[str, Any]:
    return {"PK": {"S": SUBSCRIPTION_ENDPOINT_PK}, "SK": {"S": f"{protocol}#{endpoint_digest}"}}
