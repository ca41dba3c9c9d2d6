"""Where a job's files go in the bucket, and the uploads a dead attempt leaves behind.

Keys are built from ids only, with the attempt in them: a late rollback of an older attempt must never
delete a newer attempt's file. An attempt whose process is killed mid-file (out of memory, a lost
sandbox) leaves its multipart upload open, and nothing in that process will end it: the next attempt
does, or the sweeper when the job fails for good. The bucket's rule for incomplete uploads (a day)
is only the backstop.
"""

from __future__ import annotations

from typing import Any

from report_export.aws.s3 import abort_uploads, delete_objects_under
from report_export.core.models.jobs import Job
from report_export.core.observability import logger, metrics


def object_key(job: Job, attempt: int, file_name: str) -> str:
    return f"{attempt_prefix(job, attempt)}{file_name}"


def job_prefix(job: Job) -> str:
    return f"tenants/{job.tenant_id}/jobs/{job.id}/"


def attempt_prefix(job: Job, attempt: int) -> str:
    return f"{job_prefix(job)}{attempt}/"


def checkpoint_prefix(job: Job) -> str:
    """Where the bytes of a file's checkpoints go (generation.continuation)."""
    return f"{job_prefix(job)}checkpoints/"


def abort_abandoned_uploads(
    s3: Any, *, bucket: str, job: Job, keep_attempt: int | None = None, keep_upload_id: str | None = None
) -> int:
    """Abort the job's open uploads (but those of `keep_attempt`, the attempt that now owns it, and the one
    a checkpoint goes on with); how many. A failure here stops nothing: it is logged, and the bucket's rule
    removes them later."""
    keep = attempt_prefix(job, keep_attempt) if keep_attempt is not None else None
    try:
        aborted = abort_uploads(
            s3, bucket=bucket, prefix=job_prefix(job), keep_prefix=keep, keep_upload_id=keep_upload_id
        )
    except Exception:
        logger.warning("Could not abort the uploads left open by earlier attempts", exc_info=True)
        return 0
    if aborted:
        logger.warning("Aborted uploads left open by earlier attempts", extra={"count": aborted})
        metrics.add_metric(name="AbandonedUploadsAborted", unit="Count", value=aborted)
    return aborted


def discard_unfinished_file(s3: Any, *, bucket: str, job: Job) -> None:
    """The job ended without its file (cancelled or failed): every upload it left open is aborted and every
    checkpoint's bytes deleted. A failure is logged: the bucket's rules remove what is left, later."""
    abort_abandoned_uploads(s3, bucket=bucket, job=job)
    forget_checkpoints(s3, bucket=bucket, job=job)


def forget_checkpoints(s3: Any, *, bucket: str, job: Job) -> None:
    try:
        delete_objects_under(s3, bucket=bucket, prefix=checkpoint_prefix(job))
    except Exception:
        logger.warning("Could not delete the job's checkpoints", exc_info=True)
