"""A report that outgrows one invocation: the checkpoint one invocation leaves for the next.

The checkpoint says exactly where the file stands: where the read goes on (slice and cursor), what
the file holds (rows, the last row's sort value, the watermark), the multipart upload (its id, the
parts stored, the sha256 state) and the gzip stage's state. Its small part is a JSON attribute of the
job item, written by the attempt that owns the job, in the same conditional write that hands the job
over; the bytes written but not yet in a part (under one part, plus under 1 MiB of input the gzip
stage holds) go to an object of their own beside the file, under the job's `checkpoints/` prefix,
named after the attempt and the checkpoint's number so that no two writers share one. The object is
written before the item that names it, so an item never names a missing object; the one before is
deleted once the new item is written, and every one goes when the job ends.

`Continuation` is the generator's side of it: how long an invocation reads, the hand-over at the
end of its time, and the checkpoint the next invocation goes on from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson

from report_export.aws.dynamo.codecs import StoredJob
from report_export.aws.dynamo.jobs import JobRepository
from report_export.aws.dynamo.table import StaleWrite
from report_export.aws.multipart import MultipartUpload, UploadState
from report_export.aws.sqs import GenerateQueue
from report_export.core.models.common import format_timestamp, now_utc
from report_export.core.models.jobs import CONTINUING, Job
from report_export.core.observability import logger, metrics
from report_export.core.settings import Settings
from report_export.generation.compression import GzipCompressor, GzipState
from report_export.generation.encoding import Written
from report_export.generation.progress import LostClaim, Progress
from report_export.generation.slices import ReadPosition
from report_export.generation.uploads import checkpoint_prefix, discard_unfinished_file
from report_export.generation.watch import JobCancelled

CHECKPOINT_VERSION = 1
# Of the time an invocation has left when it starts, the share spent reading pages.
_READING_SHARE = 0.7


class BadCheckpoint(Exception):
    """The checkpoint cannot be resumed from (its object is missing or not the bytes it names)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    attempt: int  # the attempt that wrote it
    number: int  # checkpoints written for this file so far, this one included
    position: ReadPosition
    written: dict[str, Any]  # generator.Written.as_json()
    pages: int  # pages written so far, for the progress estimate
    upload: UploadState
    gzip: GzipState | None

    @property
    def rows(self) -> int:
        return int(self.written["rows"])


class CheckpointStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def save(self, job: Job, checkpoint: Checkpoint) -> str:
        """Stores the checkpoint's bytes; returns the JSON for the job item (which names them)."""
        pending_gzip = checkpoint.gzip.pending if checkpoint.gzip else b""
        tail = checkpoint.upload.pending + pending_gzip
        key = f"{checkpoint_prefix(job)}{checkpoint.attempt}-{checkpoint.number}"
        self._s3.put_object(Bucket=self._bucket, Key=key, Body=tail, ServerSideEncryption="AES256")
        return orjson.dumps(
            {
                "version": CHECKPOINT_VERSION,
                "attempt": checkpoint.attempt,
                "number": checkpoint.number,
                "position": {
                    "sliced": checkpoint.position.sliced,
                    "slice": checkpoint.position.slice,
                    "cursor": checkpoint.position.cursor,
                    "rows_before": checkpoint.position.rows_before,
                },
                "written": checkpoint.written,
                "pages": checkpoint.pages,
                "upload": checkpoint.upload.as_json(),
                "gzip": checkpoint.gzip.as_json() if checkpoint.gzip else None,
                "tail": {
                    "key": key,
                    "upload_bytes": len(checkpoint.upload.pending),
                    "gzip_bytes": len(pending_gzip),
                    "sha256": hashlib.sha256(tail).hexdigest(),
                },
            }
        ).decode()

    def load(self, saved: str) -> Checkpoint:
        item = orjson.loads(saved)
        if item.get("version") != CHECKPOINT_VERSION:
            raise BadCheckpoint(f"checkpoint version {item.get('version')} is not one this code reads")
        tail = item["tail"]
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=tail["key"])["Body"].read()
        except self._s3.exceptions.NoSuchKey:
            raise BadCheckpoint(f"the checkpoint's bytes ({tail['key']}) are gone") from None
        if len(body) != tail["upload_bytes"] + tail["gzip_bytes"] or hashlib.sha256(body).hexdigest() != tail["sha256"]:
            raise BadCheckpoint(f"the checkpoint's bytes ({tail['key']}) are not the ones it names")
        upload_pending, gzip_pending = body[: tail["upload_bytes"]], body[tail["upload_bytes"] :]
        position = item["position"]
        return Checkpoint(
            attempt=int(item["attempt"]),
            number=int(item["number"]),
            position=ReadPosition(
                sliced=bool(position["sliced"]),
                slice=int(position["slice"]),
                cursor=position["cursor"],
                rows_before=int(position["rows_before"]),
            ),
            written=item["written"],
            pages=int(item["pages"]),
            upload=UploadState.from_json(item["upload"], upload_pending),
            gzip=GzipState.from_json(item["gzip"], gzip_pending) if item["gzip"] is not None else None,
        )

    def forget(self, saved: str | None) -> None:
        """Deletes a superseded checkpoint's bytes (a failure only leaves them to the job's end)."""
        if saved is None:
            return
        try:
            key = orjson.loads(saved)["tail"]["key"]
            self._s3.delete_object(Bucket=self._bucket, Key=key)
        except Exception:
            logger.warning("Could not delete a superseded checkpoint", exc_info=True)


def checkpoint_attempt(saved: str | None) -> int | None:
    """The attempt that wrote the checkpoint, for counting the attempts made since (None without one)."""
    if saved is None:
        return None
    try:
        return int(orjson.loads(saved)["attempt"])
    except (ValueError, KeyError, TypeError):
        return None


class Continuation:
    def __init__(self, settings: Settings, jobs: JobRepository, s3: Any, queue: GenerateQueue) -> None:
        self._settings = settings
        self._jobs = jobs
        self._s3 = s3
        self._queue = queue
        self._store = CheckpointStore(s3, settings.reports_bucket)

    def reading_seconds(self, time_left: Callable[[], float] | None) -> float:
        """How long this invocation reads pages: the rest of its time is kept for finishing the file (the
        upload's completion, a re-export's comparison, the hand-over) or for saving a checkpoint."""
        budget = self._settings.generation_leg_seconds
        if time_left is not None:
            budget = min(budget, time_left() * _READING_SHARE)
        return max(budget, 0.0)

    def checkpoint_of(self, claimed: StoredJob) -> Checkpoint | None:
        """The checkpoint the claimed job goes on from, or None: a new file, or one that cannot be carried on
        (whose pieces are then discarded, so the file is written again from its first row)."""
        if claimed.checkpoint is None:
            return None
        try:
            return self._store.load(claimed.checkpoint)
        except BadCheckpoint:
            logger.exception("The checkpoint cannot be resumed from; the file starts again")
            discard_unfinished_file(self._s3, bucket=self._settings.reports_bucket, job=claimed.job)
            return None

    def hand_over(
        self,
        progress: Progress,
        checkpoint: Checkpoint | None,
        position: ReadPosition,
        written: Written,
        upload: MultipartUpload,
        compressor: GzipCompressor | None,
    ) -> None:
        """Saves where the file stands and hands the job to the next invocation (a wake-up of its own).

        Raises LostClaim when another attempt owns the job, JobCancelled when a cancel came meanwhile.
        """
        current = progress.current
        saved = self._store.save(
            current.job,
            Checkpoint(
                attempt=current.attempt,
                number=(checkpoint.number if checkpoint else 0) + 1,
                position=position,
                written=written.as_json(),
                pages=progress.pages,
                upload=upload.suspend(),
                gzip=compressor.state() if compressor else None,
            ),
        )
        # Until the next invocation claims it; the sweeper sends the wake-up again if it is lost.
        grace = now_utc() + timedelta(seconds=self._settings.sweep_queued_after_seconds)
        try:
            handed = self._jobs.update_attempt(
                current,
                {
                    "checkpoint": saved,
                    "phase": CONTINUING,
                    "rows_written": written.rows,
                    "progress_pct": progress.percent,
                    "lease_expires_at": format_timestamp(grace),
                    "updated_at": format_timestamp(now_utc()),
                },
            )
        except StaleWrite:
            self._store.forget(saved)
            raise LostClaim() from None
        self._store.forget(current.checkpoint)
        if handed.job.cancel_requested:
            raise JobCancelled()
        try:
            self._queue.wake_generator(handed.job)
        except Exception:
            logger.warning("Could not send the wake-up for the next invocation; the sweeper sends it", exc_info=True)
        metrics.add_metric(name="GenerationContinued", unit="Count", value=1)

    def out_of_attempts(self, claimed: StoredJob) -> bool:
        """Whether the attempts since the job's last checkpoint used up what a job gets."""
        since = checkpoint_attempt(claimed.checkpoint)
        return since is not None and claimed.attempt - since >= self._settings.max_attempts
