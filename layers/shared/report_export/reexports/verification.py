"""The service's own figures for a file it did not write: a re-export result an internal service stored.
Its sha256, size and row count come from reading the object (streamed: memory stays a few buffers
whatever its size), never from the caller, so a lineage that says "matches the original" is the
service's word."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from report_export.aws.s3 import is_missing_object
from report_export.core.errors import ValidationFailed
from report_export.core.models.common import ExportFormat
from report_export.reexports.comparison import UNREADABLE_FILE_ERRORS, NotComparable, file_rows

_DRAIN_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Measured:
    size_bytes: int
    sha256: str
    row_count: int


class _Hashing:
    """A body whose bytes are counted and hashed as they are read."""

    def __init__(self, body: Any) -> None:
        self._body = body
        self.size = 0
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._body.read(size)
        self.size += len(chunk)
        self.digest.update(chunk)
        return chunk


class ObjectReplaced(Exception):
    """The object under the key is no longer the one that was looked at (its ETag changed)."""


def measure_stored_file(
    s3: Any, *, bucket: str, key: str, etag: str, report_format: ExportFormat, gzipped: bool
) -> Measured | None:
    """The size, sha256 and rows of the object with that ETag, read as a report of that format; None when
    there is no object, ObjectReplaced when another one is there now, ValidationFailed when it is no report."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]
    except ClientError as error:
        if is_missing_object(error):
            return None
        if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
            raise ObjectReplaced(key) from None
        raise
    hashing = _Hashing(body)
    try:
        try:
            _, rows = file_rows(hashing, report_format, gzipped=gzipped)
            row_count = sum(1 for _ in rows)
        except (*UNREADABLE_FILE_ERRORS, NotComparable):
            kind = f"gzipped {report_format.value}" if gzipped else report_format.value
            raise ValidationFailed(f"new_file is not a readable {kind} report file") from None
        while hashing.read(_DRAIN_BYTES):  # what the reader did not need (a gzip trailer) is still the file
            pass
    finally:
        body.close()
    return Measured(size_bytes=hashing.size, sha256=hashing.digest.hexdigest(), row_count=row_count)
