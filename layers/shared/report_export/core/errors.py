"""Domain errors. Each carries the HTTP status and the stable code of the error envelope."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import Field

from report_export.core.models.common import ServiceModel


class ServiceError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the answer carries besides the envelope."""
        return {}


class ValidationFailed(ServiceError):
    status = 400
    code = "VALIDATION_ERROR"


class InvalidCursor(ServiceError):
    status = 400
    code = "INVALID_CURSOR"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ServiceError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class Unauthorized(ServiceError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(ServiceError):
    status = 403
    code = "FORBIDDEN"


class NotFound(ServiceError):
    status = 404
    code = "NOT_FOUND"


class IdempotencyKeyReused(ServiceError):
    status = 409
    code = "IDEMPOTENCY_KEY_REUSED"


class JobNotCancellable(ServiceError):
    status = 409
    code = "JOB_NOT_CANCELLABLE"


class ConcurrentUpdate(ServiceError):
    status = 409
    code = "CONCURRENT_UPDATE"


class ReportNotReady(ServiceError):
    status = 409
    code = "REPORT_NOT_READY"


class ReportNotReexportable(ServiceError):
    status = 409
    code = "REPORT_NOT_REEXPORTABLE"


class ReexportNotCancellable(ServiceError):
    status = 409
    code = "REEXPORT_NOT_CANCELLABLE"


class TooManySchedules(ServiceError):
    status = 409
    code = "TOO_MANY_SCHEDULES"


class NotHeld(ServiceError):
    status = 409
    code = "NOT_HELD"


class HeldThroughLineage(ServiceError):
    status = 409
    code = "HELD_THROUGH_LINEAGE"


class TooManySubscriptions(ServiceError):
    status = 409
    code = "TOO_MANY_SUBSCRIPTIONS"


class EndpointAlreadySubscribed(ServiceError):
    status = 409
    code = "ENDPOINT_ALREADY_SUBSCRIBED"


class TooManyActiveJobs(ServiceError):
    status = 429
    code = "TOO_MANY_ACTIVE_JOBS"

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class ReportTooLarge(ServiceError):
    status = 422
    code = "REPORT_TOO_LARGE"


class VersionConflict(ServiceError):
    status = 409
    code = "VERSION_CONFLICT"


class InvalidTransition(ServiceError):
    status = 409
    code = "INVALID_TRANSITION"


class ReportExpired(ServiceError):
    status = 410
    code = "REPORT_EXPIRED"


class ReportFileGone(ServiceError):
    status = 410
    code = "REPORT_FILE_GONE"


class ServiceUnavailable(ServiceError):
    status = 503
    code = "SERVICE_UNAVAILABLE"


class ErrorBody(ServiceModel):
    code: str = Field(examples=["VALIDATION_ERROR"])
    message: str = Field(examples=["end_date must be on or after start_date"])
    traceId: str = Field(examples=["c6af9ac6-7b61-11e6-9a41-93e8deadbeef"])


class ErrorEnvelope(ServiceModel):
    """The one shape of every error the API returns."""

    error: ErrorBody


class AuthorizerRejection(ServiceModel):
    """What API Gateway's JWT authorizer answers, before the function runs, for a missing, expired or
    forged token: not the envelope, which only the function writes."""

    message: str = Field(examples=["Unauthorized"])


_MAX_VALIDATION_ISSUES = 5
# A location names a field of the schema, or a key the client sent (in a map such as filters): a key is
# shown only when it is a plain identifier, so that no markup, control or look-alike text is sent back.
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _location_part(part: object) -> str:
    if isinstance(part, int):
        return str(part)
    text = str(part)
    return text if _PLAIN_NAME.fullmatch(text) else "(a key)"


def describe_validation_errors(errors: Iterable[dict[str, Any]]) -> str:
    """A readable summary of what is wrong, naming fields but never echoing the values sent."""
    issues: list[str] = []
    for error in errors:
        location = [_location_part(part) for part in error.get("loc", ())]
        source, fields = (location[0], location[1:]) if location else ("", [])
        kind = error.get("type", "")
        message = str(error.get("msg", "is invalid")).removeprefix("Value error, ")
        if kind == "json_invalid":
            issues.append("the request body is not valid JSON")
        elif source == "body" and not fields and kind == "missing":
            issues.append("a JSON request body is required")
        elif kind == "extra_forbidden":
            issues.append(f"{'.'.join(fields)}: unknown field")
        elif fields:
            issues.append(f"{'.'.join(fields)}: {message}")
        else:
            issues.append(message)
        if len(issues) == _MAX_VALIDATION_ISSUES:
            break
    return "; ".join(dict.fromkeys(issues)) or "the request is invalid"
