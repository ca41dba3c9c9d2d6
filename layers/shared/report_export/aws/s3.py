"""Report files in S3: a streaming multipart sink, presigned downloads, deletes, and how long a
file is kept.

The sink hashes and counts exactly the bytes it stores (for gzip files, the compressed
bytes), so the manifest's sha256 and size describe the object a client downloads.

Retention: the bucket's lifecycle rule (ExpireReports) deletes an object under tenants/ a number
of days after S3 created it: its Last-Modified, which for a multipart upload is when the upload
began, rounded up to the next midnight UTC. So the expiry the service promises for a file is
counted from that same creation date (`file_expiry`), never from a later moment, and a file that
must be kept longer than its creation allows gets a new creation date (`refresh_object`).
"""

from __future__ import annotations

import hashlib
import re
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from s3transfer.exceptions import S3CopyFailedError

from report_export.core.observability import logger

MIB = 1024 * 1024
# S3's limits: every part but the last is at least 5 MiB, and an upload has at most 10,000 parts.
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * 1024 * MIB
MAX_PARTS = 10_000
# SigV4 presigned URLs live at most 7 days (and no longer than the credentials that signed them).
MAX_PRESIGN_TTL_SECONDS = 7 * 24 * 3600
# CRC32 per part, as boto3's own transfer manager does: S3 checks each part on arrival and the
# whole upload on completion, whatever the client's default checksum setting.
_CHECKSUM_ALGORITHM = "CRC32"
_SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_PRECONDITION_CODES = frozenset({"412", "PreconditionFailed"})
# A refresh is a server-side copy (no byte passes through the caller): one CopyObject below the threshold,
# parts copied side by side above it. CopyObject takes at most 5 GiB, and parts keep a large object's copy
# short; boto3's managed copy keeps to S3's 10,000 parts by growing the parts of a very large object.
REFRESH_CONFIG = TransferConfig(multipart_threshold=64 * MIB, multipart_chunksize=64 * MIB, max_concurrency=10)
# What an object says of itself, as HEAD answers it and a copy takes it: the refresh keeps all of it.
_KEPT_HEADERS = (
    "CacheControl",
    "ContentDisposition",
    "ContentEncoding",
    "ContentLanguage",
    "ContentType",
    "Expires",
    "Metadata",
    "ServerSideEncryption",
    "SSEKMSKeyId",
    "StorageClass",
    "WebsiteRedirectLocation",
)


class ObjectChanged(Exception):
    """The object is no longer the one that was read (another was stored under its key meanwhile)."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    bucket: str
    key: str
    size_bytes: int
    sha256: str  # hex digest of the object's bytes exactly as stored
    parts: int  # requests that carried the bytes: 1 for a single PutObject


class MultipartUpload:
    """A write-only stream into one S3 object, uploaded in parts while the caller keeps writing.

    Bytes are buffered until a part is full; the part then goes to a background thread, and at
    most `max_parts_in_flight` parts are uploading at once (a further part waits for the oldest),
    so memory stays under (max_parts_in_flight + 1) x part_size whatever the object's size.
    An object smaller than one part, an empty one included, is stored with a single PutObject:
    no multipart upload is ever started for it, so there is nothing to abort either.

    An error in a background upload is raised by the next write() or complete(); the caller then
    aborts. As a context manager, leaving the block without complete(), on an exception or not,
    aborts the upload. Never sets Content-Encoding: a gzip file is stored as what it is
    (application/gzip), or clients that decode Content-Encoding would unzip it twice.
    """

    def __init__(
        self,
        s3_client: Any,
        *,
        bucket: str,
        key: str,
        content_type: str,
        content_disposition: str,
        part_size: int = 8 * MIB,
        max_parts_in_flight: int = 2,
    ) -> None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes (S3 limits)")
        if max_parts_in_flight < 1:
            raise ValueError("max_parts_in_flight must be at least 1")
        self._s3 = s3_client
        self._bucket = bucket
        self._key = key
        self._object_headers = {
            "ContentType": content_type,
            "ContentDisposition": content_disposition,
            "ServerSideEncryption": "AES256",
        }
        self._part_size = part_size
        self._max_in_flight = max_parts_in_flight
        self._buffer = bytearray()
        self._digest = hashlib.sha256()
        self._size = 0
        self._upload_id: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: deque[Future[dict[str, Any]]] = deque()
        self._uploaded: list[dict[str, Any]] = []
        self._parts_sent = 0
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
        while len(self._buffer) >= self._part_size:
            # The full part changes hands without a copy; only the small overflow is copied out.
            part, self._buffer = self._buffer, self._buffer[self._part_size :]
            del part[self._part_size :]
            self._send(part)

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
            if self._buffer:  # the last part may be smaller than part_size
                self._send(self._buffer)
            while self._in_flight:
                self._collect(self._in_flight.popleft())
            self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": sorted(self._uploaded, key=lambda part: part["PartNumber"])},
            )
            parts = len(self._uploaded)
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
        if self._state != "open":
            return
        self._state = "aborted"
        self._buffer = bytearray()
        for future in self._in_flight:
            future.cancel()
        # Parts still uploading are waited for: S3 may keep a part that lands after the abort.
        self._shutdown()
        self._in_flight.clear()
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
        executor = self._executor or self._start()
        if self._parts_sent == MAX_PARTS:
            raise ValueError(f"the object needs more than {MAX_PARTS} parts: raise part_size")
        while len(self._in_flight) >= self._max_in_flight:
            self._collect(self._in_flight.popleft())
        self._parts_sent += 1
        self._in_flight.append(executor.submit(self._upload_part, self._parts_sent, body))

    def _start(self) -> ThreadPoolExecutor:
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
        part = {"PartNumber": number, "ETag": response["ETag"]}
        if "ChecksumCRC32" in response:
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        return part

    def _collect(self, future: Future[dict[str, Any]]) -> None:
        try:
            self._uploaded.append(future.result())
        except BaseException as error:
            self._error = error
            raise

    def _shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def attachment_disposition(file_name: str) -> str:
    """Content-Disposition that saves the file under file_name (RFC 6266).

    A plain name goes in as is; anything else gets an ASCII fallback with the odd characters
    replaced, and the exact name percent-encoded in filename*, so no quote, backslash or line
    break can reach the header.
    """
    if not file_name:
        raise ValueError("file_name must not be empty")
    if _SAFE_FILE_NAME.fullmatch(file_name):
        return f'attachment; filename="{file_name}"'
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", file_name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(file_name, safe='')}"


def presigned_download_url(
    s3_client: Any, *, bucket: str, key: str, file_name: str, ttl_seconds: int, version_id: str | None = None
) -> str:
    """A presigned GET that downloads the object (that version of it, when given) as an attachment named file_name.

    The URL also dies with the credentials that signed it: from a Lambda role, that is the end
    of the role session, whatever ttl_seconds says.
    """
    if not 1 <= ttl_seconds <= MAX_PRESIGN_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be between 1 and {MAX_PRESIGN_TTL_SECONDS}")
    params = {"Bucket": bucket, "Key": key, "ResponseContentDisposition": attachment_disposition(file_name)}
    if version_id is not None:
        params["VersionId"] = version_id
    url: str = s3_client.generate_presigned_url("get_object", Params=params, ExpiresIn=ttl_seconds)
    # botocore presigns S3 with SigV2 unless the client was created with signature_version="s3v4"
    # (boto/boto3#2680): SigV2 is refused by newer buckets and ignores the 7-day limit.
    if "X-Amz-Signature=" not in url:
        raise RuntimeError('the S3 client must be created with Config(signature_version="s3v4") to presign')
    return url


def abort_uploads(s3_client: Any, *, bucket: str, prefix: str, keep_prefix: str | None = None) -> int:
    """Abort every multipart upload still open under `prefix` but not under `keep_prefix` (those of a
    process that died mid-file: nothing else will); how many were aborted."""
    aborted = 0
    for page in s3_client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            if keep_prefix is None or not upload["Key"].startswith(keep_prefix):
                s3_client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted += 1
    return aborted


def object_exists(s3_client: Any, *, bucket: str, key: str) -> bool:
    return object_head(s3_client, bucket=bucket, key=key) is not None


def object_head(s3_client: Any, *, bucket: str, key: str, version_id: str | None = None) -> dict[str, Any] | None:
    """The object's metadata (ContentLength, ContentType, VersionId …), or None when there is no such object
    (or no such version of it)."""
    try:
        if version_id is not None:
            return s3_client.head_object(Bucket=bucket, Key=key, VersionId=version_id)
        return s3_client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if is_missing_object(error):
            return None
        raise


def open_object(s3_client: Any, *, bucket: str, key: str) -> Any | None:
    """The object's body as a stream (close it when done), or None when there is no such object."""
    try:
        return s3_client.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        if is_missing_object(error):
            return None
        raise


def is_missing_object(error: ClientError) -> bool:
    """S3's several ways of saying "no such object" (HEAD answers a bare 404)."""
    return error.response.get("Error", {}).get("Code") in _NOT_FOUND_CODES


def file_expiry(stored_at: datetime, retention_days: int) -> datetime:
    """Until when a report file S3 created at `stored_at` is kept: the service's expires_at for it.

    The lifecycle rule deletes the object retention_days after that creation, rounded up to the next
    midnight UTC, so the file is always still there at this moment (and a little longer). Whoever
    promises an expiry computes it here, from the object's own creation date.
    """
    return stored_at.astimezone(UTC) + timedelta(days=retention_days)


def object_stored_at(s3_client: Any, *, bucket: str, key: str) -> datetime | None:
    """When S3 created the object (its Last-Modified; for a multipart upload, when the upload began), or None
    when there is no such object. The lifecycle rule counts the object's age from this moment."""
    head = object_head(s3_client, bucket=bucket, key=key)
    return None if head is None else head["LastModified"]


def refresh_object(
    s3_client: Any, *, bucket: str, key: str, head: dict[str, Any], config: TransferConfig = REFRESH_CONFIG
) -> datetime | None:
    """Copies the object onto itself, server-side, so that S3 creates it anew: the lifecycle rule counts its
    age from now. Its bytes, content type, disposition, encoding, metadata, encryption and storage class stay
    as `head` (its HEAD) read them. Returns the new creation date, or None when the object is gone.

    The copy is of the object `head` describes (its ETag), or none: ObjectChanged when another object was
    stored under the key meanwhile. Other S3 errors are raised as they come.
    """
    kept = {name: head[name] for name in _KEPT_HEADERS if head.get(name)}
    extra_args = {**kept, "MetadataDirective": "REPLACE", "CopySourceIfMatch": head["ETag"]}
    try:
        s3_client.copy({"Bucket": bucket, "Key": key}, bucket, key, ExtraArgs=extra_args, Config=config)
    except ClientError as error:
        if is_missing_object(error):
            return None
        if error.response.get("Error", {}).get("Code") in _PRECONDITION_CODES:
            raise ObjectChanged(key) from None
        raise
    except S3CopyFailedError:
        # The managed copy's word for a part whose source no longer had the ETag read.
        raise ObjectChanged(key) from None
    return object_stored_at(s3_client, bucket=bucket, key=key)
