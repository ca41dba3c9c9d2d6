"""A streaming multipart sink into one S3 object, which one invocation can leave to the next.

The sink hashes and counts exactly the bytes it stores (for gzip files, the compressed bytes), so
the manifest's sha256 and size describe the object a client downloads. Its whole state (the upload's
id, the parts sent, the hash, the bytes not yet in a part) can be taken at any moment (`state`) and
handed to a new sink in another process (`resume`), which goes on as if it had written everything
itself: the object, its sha256 and its size are those of one uninterrupted write.

Part sizes follow a fixed plan by part number (`PART_PLAN`): small parts while a file is small, so
a small file costs little memory, and larger ones as it grows, so that S3's 10,000 parts reach
`MAX_OBJECT_BYTES` whatever the file's size, without knowing it in advance.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate
from types import TracebackType
from typing import Any, Self

from report_export.core.digest import ResumableSha256
from report_export.core.observability import logger

MIB = 1024 * 1024
# S3's limits: every part but the last is at least 5 MiB, and an upload has at most 10,000 parts.
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * 1024 * MIB
MAX_PARTS = 10_000
# (parts, size of each): 8 MiB parts up to ~7.8 GiB, then larger ones. The largest part bounds the
# generator's memory: at most (parts in flight + 1) parts are held at once, 192 MiB at 64 MiB.
PART_PLAN: tuple[tuple[int, int], ...] = ((1000, 8 * MIB), (1000, 16 * MIB), (1000, 32 * MIB), (7000, 64 * MIB))
MAX_OBJECT_BYTES = sum(count * size for count, size in PART_PLAN)
_PLAN_ENDS = tuple(accumulate(count for count, _ in PART_PLAN))
# CRC32 per part, as boto3's own transfer manager does: S3 checks each part on arrival and the
# whole upload on completion, whatever the client's default checksum setting.
_CHECKSUM_ALGORITHM = "CRC32"


def planned_part_size(number: int) -> int:
    """The size of part `number` (1-based) under PART_PLAN."""
    for end, (_, size) in zip(_PLAN_ENDS, PART_PLAN, strict=True):
        if number <= end:
            return size
    raise ValueError(f"an upload has at most {MAX_PARTS} parts")


class ObjectTooLarge(Exception):
    """The object would need more parts than S3 allows."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    bucket: str
    key: str
    size_bytes: int
    sha256: str  # hex digest of the object's bytes exactly as stored
    parts: int  # requests that carried the bytes: 1 for a single PutObject


@dataclass(frozen=True, slots=True)
class UploadState:
    """Where an unfinished upload stands: every part up to `parts_sent` is stored in S3."""

    key: str
    upload_id: str | None  # None while everything fits in `pending` (no multipart upload begun)
    parts_sent: int
    size: int  # bytes written, pending ones included
    sha256: dict[str, Any]  # ResumableSha256.state()
    pending: bytes  # written, not yet in a part

    def as_json(self) -> dict[str, Any]:
        """All but `pending`, which is too large for a database item and travels on its own."""
        return {
            "key": self.key,
            "upload_id": self.upload_id,
            "parts_sent": self.parts_sent,
            "size": self.size,
            "sha256": self.sha256,
        }

    @classmethod
    def from_json(cls, saved: dict[str, Any], pending: bytes) -> UploadState:
        return cls(
            key=saved["key"],
            upload_id=saved["upload_id"],
            parts_sent=int(saved["parts_sent"]),
            size=int(saved["size"]),
            sha256=saved["sha256"],
            pending=pending,
        )


class MultipartUpload:
    """A write-only stream into one S3 object, uploaded in parts while the caller keeps writing.

    Bytes are buffered until a part is full; the part then goes to a background thread, and at
    most `max_parts_in_flight` parts are uploading at once (a further part waits for the oldest),
    so memory stays under (max_parts_in_flight + 1) x part size whatever the object's size.
    An object smaller than one part, an empty one included, is stored with a single PutObject:
    no multipart upload is ever started for it, so there is nothing to abort either.

    An error in a background upload is raised by the next write() or complete(); the caller then
    aborts. As a context manager, leaving the block without complete() or suspend(), on an
    exception or not, aborts the upload. Never sets Content-Encoding: a gzip file is stored as what
    it is (application/gzip), or clients that decode Content-Encoding would unzip it twice.
    """

    def __init__(
        self,
        s3_client: Any,
        *,
        bucket: str,
        key: str,
        content_type: str,
        content_disposition: str,
        part_size: int | None = None,
        max_parts_in_flight: int = 2,
        resume: UploadState | None = None,
    ) -> None:
        if part_size is not None and not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes (S3 limits)")
        if max_parts_in_flight < 1:
            raise ValueError("max_parts_in_flight must be at least 1")
        if resume is not None and resume.key != key:
            raise ValueError("a resumed upload goes on under its own key")
        self._s3 = s3_client
        self._bucket = bucket
        self._key = key
        self._object_headers = {
            "ContentType": content_type,
            "ContentDisposition": content_disposition,
            "ServerSideEncryption": "AES256",
        }
        self._part_size: Callable[[int], int] = planned_part_size if part_size is None else lambda _: part_size
        self._max_in_flight = max_parts_in_flight
        self._buffer = bytearray(resume.pending) if resume else bytearray()
        self._digest = ResumableSha256(resume.sha256 if resume else None)
        self._size = resume.size if resume else 0
        self._upload_id: str | None = resume.upload_id if resume else None
        # Parts an earlier invocation sent: their ETags are read back from S3 on completion.
        self._parts_before = resume.parts_sent if resume else 0
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: deque[Future[dict[str, Any]]] = deque()
        self._uploaded: list[dict[str, Any]] = []
        self._parts_sent = self._parts_before
        self._error: BaseException | None = None
        self._state = "open"

    @property
    def size_bytes(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def upload_id(self) -> str | None:
        """The multipart upload's id once one was started (the object outgrew one part)."""
        return self._upload_id

    def write(self, data: bytes) -> None:
        self._check_usable()
        if not data:
            return
        self._digest.update(data)
        self._size += len(data)
        self._buffer += data
        while len(self._buffer) >= (size := self._part_size(self._parts_sent + 1)):
            # The full part changes hands without a copy; only the small overflow is copied out.
            part, self._buffer = self._buffer, self._buffer[size:]
            del part[size:]
            self._send(part)

    def state(self) -> UploadState:
        """Where the upload stands, once every part sent so far is stored; writing may go on after it."""
        self._check_usable()
        while self._in_flight:
            self._collect(self._in_flight.popleft())
        return UploadState(
            key=self._key,
            upload_id=self._upload_id,
            parts_sent=self._parts_sent,
            size=self._size,
            sha256=self._digest.state(),
            pending=bytes(self._buffer),
        )

    def suspend(self) -> UploadState:
        """state(), after which this sink stops: the upload stays open for whoever resumes it."""
        state = self.state()
        self._state = "suspended"
        self._buffer = bytearray()
        self._shutdown()
        return state

    def close(self) -> None:
        """Stops this sink, leaving S3 as it is: an upload an earlier checkpoint names stays for whoever
        resumes it (or, if the job ends, for whoever discards it)."""
        if self._state == "open":
            self._stop("closed")

    def complete(self) -> StoredObject:
        self._check_usable()
        if self._upload_id is None:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=self._key,
                Body=bytes(self._buffer),
                ChecksumAlgorithm=_CHECKSUM_ALGORITHM,
                **self._object_headers,
            )
            parts = 1
        else:
            if self._buffer:  # the last part may be smaller than the others
                self._send(self._buffer)
            while self._in_flight:
                self._collect(self._in_flight.popleft())
            every_part = self._earlier_parts() + self._uploaded
            self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": sorted(every_part, key=lambda part: part["PartNumber"])},
            )
            parts = len(every_part)
        self._buffer = bytearray()
        self._state = "completed"
        self._shutdown()
        return StoredObject(
            bucket=self._bucket, key=self._key, size_bytes=self._size, sha256=self._digest.hexdigest(), parts=parts
        )

    def abort(self) -> None:
        """Drop everything written; no object and no unfinished upload is left behind.

        Does nothing once completed or aborted: a stored object is deleted with delete_object.
        """
        if self._state not in ("open", "suspended", "closed"):
            return
        # Parts still uploading are waited for: S3 may keep a part that lands after the abort.
        self._stop("aborted")
        if self._upload_id is not None:
            self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._state != "open":
            return
        if exc is None:
            self.abort()
            return
        try:
            self.abort()
        except Exception:
            # The original error matters more; the bucket's lifecycle rule for incomplete
            # multipart uploads removes what an abort could not.
            logger.exception("Aborting the multipart upload failed", extra={"key": self._key})

    def _check_usable(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"the upload is {self._state}")
        if self._error is None:
            for future in self._in_flight:
                if future.done() and future.exception() is not None:
                    self._error = future.exception()
                    break
        if self._error is not None:
            raise self._error

    def _send(self, body: bytearray) -> None:
        if self._parts_sent == MAX_PARTS:
            raise ObjectTooLarge(f"the object needs more than {MAX_PARTS} parts")
        executor = self._executor or self._start()
        while len(self._in_flight) >= self._max_in_flight:
            self._collect(self._in_flight.popleft())
        self._parts_sent += 1
        self._in_flight.append(executor.submit(self._upload_part, self._parts_sent, body))

    def _start(self) -> ThreadPoolExecutor:
        if self._upload_id is None:
            started = self._s3.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, ChecksumAlgorithm=_CHECKSUM_ALGORITHM, **self._object_headers
            )
            self._upload_id = started["UploadId"]
        self._executor = ThreadPoolExecutor(max_workers=self._max_in_flight, thread_name_prefix="s3-part")
        return self._executor

    def _upload_part(self, number: int, body: bytearray) -> dict[str, Any]:
        response = self._s3.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
            ChecksumAlgorithm=_CHECKSUM_ALGORITHM,
        )
        return _part_entry(number, response)

    def _earlier_parts(self) -> list[dict[str, Any]]:
        """The parts earlier invocations sent, as S3 holds them. One that is missing, or of another size than
        the plan gives it, means the upload is not the one the checkpoint describes: completing it would
        store a different file, so it is refused."""
        if not self._parts_before:
            return []
        found: dict[int, dict[str, Any]] = {}
        for page in self._s3.get_paginator("list_parts").paginate(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
        ):
            for part in page.get("Parts", []):
                if part["PartNumber"] <= self._parts_before:
                    if part["Size"] != self._part_size(part["PartNumber"]):
                        raise RuntimeError(f"part {part['PartNumber']} of the resumed upload has the wrong size")
                    found[part["PartNumber"]] = _part_entry(part["PartNumber"], part)
        if len(found) != self._parts_before:
            raise RuntimeError(f"the resumed upload has {len(found)} of its {self._parts_before} earlier parts")
        return list(found.values())

    def _collect(self, future: Future[dict[str, Any]]) -> None:
        try:
            self._uploaded.append(future.result())
        except BaseException as error:
            self._error = error
            raise

    def _stop(self, state: str) -> None:
        """No more writes; parts not yet uploading are dropped, those uploading are waited for."""
        self._state = state
        self._buffer = bytearray()
        for future in self._in_flight:
            future.cancel()
        self._shutdown()
        self._in_flight.clear()

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def _part_entry(number: int, described: dict[str, Any]) -> dict[str, Any]:
    part = {"PartNumber": number, "ETag": described["ETag"]}
    if "ChecksumCRC32" in described:
        part["ChecksumCRC32"] = described["ChecksumCRC32"]
    return part
