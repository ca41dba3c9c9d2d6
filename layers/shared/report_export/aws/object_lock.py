"""Legal holds on report files (S3 Object Lock): a held version of an object cannot be deleted by anyone,
the bucket's lifecycle rules included, until the hold is lifted."""

from __future__ import annotations

from typing import Any

from report_export.aws.s3 import object_head


def place_hold(s3_client: Any, *, bucket: str, key: str) -> str | None:
    """Hold the object's current version and return its version id; None when there is no such object."""
    head = object_head(s3_client, bucket=bucket, key=key)
    if head is None:
        return None
    version_id = head.get("VersionId")
    if not version_id or version_id == "null":
        # A version written before versioning was turned on cannot be locked on its own.
        raise RuntimeError("the reports bucket must have versioning and Object Lock enabled to hold a file")
    s3_client.put_object_legal_hold(Bucket=bucket, Key=key, VersionId=version_id, LegalHold={"Status": "ON"})
    return version_id


def lift_hold(s3_client: Any, *, bucket: str, key: str, version_id: str) -> None:
    """Lift the hold of that version; one already gone (it could not have been, while held) is no error."""
    if object_head(s3_client, bucket=bucket, key=key, version_id=version_id) is None:
        return
    s3_client.put_object_legal_hold(Bucket=bucket, Key=key, VersionId=version_id, LegalHold={"Status": "OFF"})
