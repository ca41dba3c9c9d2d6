"""Optimistic locking at the edge: the version a caller read, from the body or the If-Match header."""

from __future__ import annotations

import re

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

from api.rest import json_response
from report_export.core.errors import ValidationFailed

_ETAG_RE = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')


def if_match_version(if_match: str | None, *, of: str) -> int | None:
    """The version in an If-Match header ("3" or the ETag form "\\"3\\""), or None without one."""
    if if_match is None:
        return None
    match = _ETAG_RE.match(if_match)
    if match is None:
        raise ValidationFailed(f"If-Match must be the {of}'s version, as its ETag gives it")
    return int(match.group(1))


def expected_version(body_version: int | None, if_match: str | None, *, of: str) -> int:
    """The version the caller read: expected_version in the body, or If-Match; both must agree."""
    header_version = if_match_version(if_match, of=of)
    if body_version is not None and header_version is not None and body_version != header_version:
        raise ValidationFailed("expected_version and If-Match name different versions")
    version = body_version if body_version is not None else header_version
    if version is None:
        raise ValidationFailed("expected_version (or the If-Match header) is required")
    return version


def with_etag(status: int, record: BaseModel, version: int, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, record, {"ETag": f'"{version}"', **(headers or {})})
