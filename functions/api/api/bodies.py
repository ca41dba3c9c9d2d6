"""The one place a request body is read: its media type, charset, size, JSON and shape are checked
before any route sees it, and what passes is handed on re-encoded, so that the routes (and Powertools'
validation) only ever read one JSON object of plain, finite values.

A refusal never quotes the body back: it says which rule the body broke.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from report_export.core.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

# Every body this API takes is a small JSON object: a job's parameters, a schedule, a file reference.
MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 16
# No number this API takes needs more digits (versions, sizes, filter values).
MAX_INTEGER_DIGITS = 19
_JSON_MEDIA_TYPE = "application/json"
_CHARSET_RE = re.compile(r"^\s*charset\s*=\s*\"?([A-Za-z0-9._-]+)\"?\s*$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _Refused(ValueError):
    pass


def checked_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its body checked and re-encoded (unchanged when it carries none); raises
    ValidationFailed, PayloadTooLarge or UnsupportedMediaType for a body this API does not take."""
    method = str(((event.get("requestContext") or {}).get("http") or {}).get("method") or "").upper()
    raw = event.get("body")
    if method not in _BODY_METHODS or raw is None or raw == "":
        return event
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    _check_media_type(headers.get("content-type"))
    data = _bytes_of(raw, encoded=bool(event.get("isBase64Encoded")))
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the request body must not exceed {MAX_BODY_BYTES} bytes")
    document = parse_json_object(data)
    return {
        **event,
        "body": json.dumps(document, ensure_ascii=False, allow_nan=False),
        "isBase64Encoded": False,
        "headers": {**(event.get("headers") or {}), "content-type": _JSON_MEDIA_TYPE},
    }


def parse_json_object(data: bytes) -> dict[str, Any]:
    """One JSON object of finite numbers, unique keys and bounded depth (ValidationFailed otherwise)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed("the request body must be UTF-8 encoded JSON") from None
    if text.startswith("\ufeff"):
        raise ValidationFailed("the request body must be UTF-8 encoded JSON without a byte order mark")
    try:
        document = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except _Refused as refused:
        raise ValidationFailed(str(refused)) from None
    except RecursionError:
        raise ValidationFailed(f"the request body must not nest deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise ValidationFailed("the request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise ValidationFailed("the request body must be a JSON object")
    if _depth(document) > MAX_DEPTH:
        raise ValidationFailed(f"the request body must not nest deeper than {MAX_DEPTH} levels")
    return document


def _check_media_type(content_type: str | None) -> None:
    if content_type is None:
        raise UnsupportedMediaType("send the body as application/json (the Content-Type header is missing)")
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() != _JSON_MEDIA_TYPE:
        raise UnsupportedMediaType("the request body must be application/json")
    for parameter in parameters:
        charset = _CHARSET_RE.match(parameter)
        if charset is not None and charset.group(1).lower() not in ("utf-8", "utf8"):
            raise UnsupportedMediaType("the request body must be UTF-8 encoded (charset=utf-8)")


def _bytes_of(raw: Any, *, encoded: bool) -> bytes:
    if not encoded:
        return str(raw).encode("utf-8", errors="surrogatepass")
    try:
        return base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailed("the request body could not be decoded") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _Refused("the request body names a key twice in one object")
        document[key] = value
    return document


def _no_constant(_: str) -> Any:
    raise _Refused("the request body holds NaN or Infinity, which JSON numbers cannot be")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("the request body holds a number too large for JSON to carry exactly")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise _Refused(f"the request body holds an integer of more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _depth(document: Any) -> int:
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
    return deepest
