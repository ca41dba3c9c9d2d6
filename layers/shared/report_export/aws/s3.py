"""Report files in S3: presigned downloads, reads, deletes, and how long a file is kept (the
streaming multipart sink that writes them is in `multipart`).

Retention: the bucket's lifecycle rule (ExpireReports) deletes an object under tenants/ a number
of days after S3 created it: its Last-Modified, which for a multipart upload is when the upload
began, rounded up to the next midnight UTC. So the expiry the service promises for a file is
counted from that same creation date (`file_expiry`), never from a later moment, and a file that
must be kept longer than its creation allows gets a new creation date (`refresh_object`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from s3transfer.exceptions import S3CopyFailedError

MIB = 1024 * 1024
# SigV4 presigned URLs live at most 7 days (and no longer than the credentials that signed them).
MAX_PRESIGN_TTL_SECONDS = 7 * 24 * 3600
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


def abort_uploads(
    s3_client: Any, *, bucket: str, prefix: str, keep_prefix: str | None = None, keep_upload_id: str | None = None
) -> int:
    """Abort every multipart upload still open under `prefix` but not under `keep_prefix` nor the one with
    `keep_upload_id` (those of a process that died mid-file: nothing else will); how many were aborted."""
    aborted = 0
    for page in s3_client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            if upload["UploadId"] == keep_upload_id:
                continue
            if keep_prefix is None or not upload["Key"].startswith(keep_prefix):
                s3_client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted += 1
    return aborted


def delete_objects_under(s3_client: Any, *, bucket: str, prefix: str) -> int:
    """Delete every object under `prefix`; how many."""
    deleted = 0
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for found in page.get("Contents", []):
            s3_client.delete_object(Bucket=bucket, Key=found["Key"])
            deleted += 1
    return deleted


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
