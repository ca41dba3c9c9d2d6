from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from api.paging import cursor_after, position_of
from api.rest import BEARER_AUTH, authenticate, error_responses, success_response
from api.versions import expected_version, with_etag
from report_export.core.models.common import INTERNAL_ROLES, JOB_ID_PATTERN, READER_ROLES, WRITER_ROLES
from report_export.core.models.reexports import (
    CreateReexportRequest,
    Reexport,
    ReexportPage,
    ReexportStatus,
    UpdateReexportRequest,
)
from report_export.reexports.requests import reexport_requests
from report_export.reexports.results import reexport_results

router = Router()

REEXPORTS = "/api/v1/report-reexports"

ReexportId = Annotated[str, Path(description="The re-export id (a UUIDv7)", max_length=64)]


def _with_etag(status: int, record: Reexport, headers: dict[str, str] | None = None) -> Response[Reexport]:
    return with_etag(status, record, record.version, headers)


@router.post(
    REEXPORTS,
    status_code=202,
    summary="Re-export a past report from its stored parameters",
    description="Roles: tenant_admin, farm_manager. Regenerates a report that succeeded (whether or not its file "
    "still exists) through the same pipeline as a new job, optionally with overrides (format, compression, "
    "filters, period; validated as for a new job). While a re-export of the report is pending or running, the "
    "request answers 200 with that one and the header Idempotent-Replayed: true.",
    tags=["re-exports"],
    security=BEARER_AUTH,
    responses={
        202: success_response(Reexport, "The re-export, pending: its job is queued for generation"),
        200: success_response(Reexport, "A re-export of this report is already pending or running: that one"),
        **error_responses(
            400,
            401,
            403,
            404,
            409,
            413,
            415,
            429,
            conflict="The report never succeeded (REPORT_NOT_REEXPORTABLE)",
        ),
    },
)
def create_reexport(request: CreateReexportRequest) -> Response[Reexport]:
    principal = authenticate(router, WRITER_ROLES)
    outcome = reexport_requests().reexport_report(
        principal, request.report_id, overrides=request.overrides, reason=request.reason
    )
    if outcome.replayed:
        return _with_etag(200, outcome.record, {"Idempotent-Replayed": "true"})
    return _with_etag(202, outcome.record, {"Location": f"{REEXPORTS}/{outcome.record.id}"})


@router.get(
    REEXPORTS,
    summary="List re-exports, newest first",
    description="Roles: all readers. Filter by report_id and status; page with limit and next_cursor.",
    tags=["re-exports"],
    security=BEARER_AUTH,
    responses={200: success_response(ReexportPage, "A page of re-exports"), **error_responses(400, 401, 403)},
)
def list_reexports(
    report_id: Annotated[
        str | None, Query(pattern=JOB_ID_PATTERN, description="Only re-exports of this report (job id)")
    ] = None,
    status: Annotated[ReexportStatus | None, Query(description="Only re-exports in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
    next_cursor: Annotated[str | None, Query(max_length=1024, description="From the previous page")] = None,
) -> ReexportPage:
    principal = authenticate(router, READER_ROLES)
    query = {"tenant": principal.tenant_id, "list": "reexports", "status": status, "report_id": report_id}
    records, last = reexport_requests().list_reexports(
        principal, status=status, report_id=report_id, limit=limit, after=position_of(next_cursor, **query)
    )
    return ReexportPage(items=records, next_cursor=cursor_after(last, **query))


@router.get(
    f"{REEXPORTS}/<reexport_id>",
    summary="Get one re-export: status, lineage and, when it succeeded, a download URL",
    description="Roles: all readers. Once succeeded, and while the new file exists and has not expired (the "
    "re-export's expires_at), the answer carries a fresh presigned download_url (TTL REPORT_DOWNLOAD_TTL_SEC); "
    "each one is an entry in the report's history. "
    "The ETag header is the record's version.",
    tags=["re-exports"],
    security=BEARER_AUTH,
    responses={200: success_response(Reexport, "The re-export"), **error_responses(400, 401, 403, 404)},
)
def get_reexport(reexport_id: ReexportId) -> Response[Reexport]:
    principal = authenticate(router, READER_ROLES)
    return _with_etag(200, reexport_requests().get_reexport(principal, reexport_id))


@router.put(
    f"{REEXPORTS}/<reexport_id>",
    summary="Store a re-export's result file, or record its completion notification (internal services)",
    description="Role: internal_service only. Optimistic locking: send the version read (expected_version, or "
    "the If-Match header); a stale one answers 409 VERSION_CONFLICT. new_file moves a pending or running "
    "re-export to succeeded (the key must be under tenants/{your tenant}/ and exist, with that size); "
    "notification_sent announces a finished re-export (SNS, EventBridge) and records notification_sent_at; "
    "while another request announces it the answer is 409 CONCURRENT_UPDATE, and if the announcement cannot be "
    "published, 503 SERVICE_UNAVAILABLE (retry with the same version). Any other move answers 409 INVALID_TRANSITION.",
    tags=["re-exports"],
    security=BEARER_AUTH,
    responses={
        200: success_response(Reexport, "The re-export, updated"),
        **error_responses(
            400,
            401,
            403,
            404,
            409,
            413,
            415,
            conflict="Stale version (VERSION_CONFLICT), invalid move (INVALID_TRANSITION) or an announcement "
            "in progress (CONCURRENT_UPDATE)",
        ),
    },
)
def update_reexport(
    reexport_id: ReexportId,
    request: UpdateReexportRequest,
    if_match: Annotated[
        str | None, Header(max_length=64, description="The version to update, as the ETag gives it")
    ] = None,
) -> Response[Reexport]:
    principal = authenticate(router, INTERNAL_ROLES)
    version = expected_version(request.expected_version, if_match, of="re-export")
    record = reexport_results().update_reexport(principal, reexport_id, request, expected_version=version).record
    return _with_etag(200, record)


@router.delete(
    f"{REEXPORTS}/<reexport_id>",
    summary="Cancel a re-export",
    description="Roles: tenant_admin, farm_manager. Through the job's own cancel: a pending re-export is "
    "cancelled at once with its job (200); a running one has its job asked to stop (202) and ends cancelled at "
    "the generator's next checkpoint; a finished one cannot be cancelled (409 REEXPORT_NOT_CANCELLABLE).",
    tags=["re-exports"],
    security=BEARER_AUTH,
    responses={
        200: success_response(Reexport, "The re-export, cancelled"),
        202: success_response(Reexport, "Cancel requested: the running job stops at its next checkpoint"),
        **error_responses(400, 401, 403, 404, 409, conflict="The re-export has already finished"),
    },
)
def cancel_reexport(reexport_id: ReexportId) -> Response[Reexport]:
    principal = authenticate(router, WRITER_ROLES)
    outcome = reexport_requests().cancel_reexport(principal, reexport_id)
    return _with_etag(200 if outcome.completed else 202, outcome.record)
