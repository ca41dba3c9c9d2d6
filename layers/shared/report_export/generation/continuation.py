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
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from report_export.aws.multipart import UploadState
from report_export.core.models.jobs import Job
from report_export.core.observability import logger
from report_export.generation.compression import GzipState
from report_export.generation.slices import ReadPosition
from report_export.generation.uploads import checkpoint_prefix

CHECKPOINT_VERSION = 1


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
