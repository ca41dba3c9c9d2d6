from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from api.paging import cursor_after, position_of
from api.rest import BEARER_AUTH, authenticate, error_responses, success_response
from api.versions import expected_version, if_match_version, with_etag
from report_export.core.models.common import READER_ROLES, Role
from report_export.core.models.schedules import Schedule, SchedulePage, ScheduleSpec, UpdateScheduleRequest
from report_export.schedules.service import schedule_service

router = Router()

SCHEDULES = "/api/v1/reports/schedules"
ADMIN_ROLES = frozenset({Role.TENANT_ADMIN})

ScheduleId = Annotated[str, Path(description="The schedule id (a UUIDv7)", max_length=64)]
IfMatch = Annotated[str | None, Header(max_length=64, description="The version read, as the ETag gives it")]

_CONFLICT = "Stale version (VERSION_CONFLICT), or another change of the schedule in progress (CONCURRENT_UPDATE)"


def _with_etag(status: int, schedule: Schedule, headers: dict[str, str] | None = None) -> Response[Schedule]:
    return with_etag(status, schedule, schedule.version, headers)


@router.post(
    SCHEDULES,
    status_code=201,
    summary="Create a schedule: a report exported on a calendar",
    description="Role: tenant_admin. Each firing makes one job of the export definition for the concrete period "
    "it stands for (in the schedule's time zone), and a firing repeated within the same period makes no second "
    "job. The expression (cron(...) or rate(...), at most hourly), time zone and window are checked before "
    "anything is stored. A tenant has at most MAX_SCHEDULES_PER_TENANT schedules.",
    tags=["schedules"],
    security=BEARER_AUTH,
    responses={
        201: success_response(Schedule, "The schedule, with its next firing time"),
        **error_responses(
            400, 401, 403, 409, 413, 415, conflict="The tenant has its most schedules (TOO_MANY_SCHEDULES)"
        ),
    },
)
def create_schedule(request: ScheduleSpec) -> Response[Schedule]:
    principal = authenticate(router, ADMIN_ROLES)
    schedule = schedule_service().create_schedule(principal, request)
    return _with_etag(201, schedule, {"Location": f"{SCHEDULES}/{schedule.id}"})


@router.get(
    SCHEDULES,
    summary="List the tenant's schedules, newest first",
    description="Roles: all readers. Page with limit and next_cursor.",
    tags=["schedules"],
    security=BEARER_AUTH,
    responses={200: success_response(SchedulePage, "A page of schedules"), **error_responses(400, 401, 403)},
)
def list_schedules(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
    next_cursor: Annotated[str | None, Query(max_length=1024, description="From the previous page")] = None,
) -> SchedulePage:
    principal = authenticate(router, READER_ROLES)
    query = {"tenant": principal.tenant_id, "list": "schedules"}
    schedules, last = schedule_service().list_schedules(principal, limit=limit, after=position_of(next_cursor, **query))
    return SchedulePage(items=schedules, next_cursor=cursor_after(last, **query))


@router.get(
    f"{SCHEDULES}/<schedule_id>",
    summary="Get one schedule, with its next firing time and its last runs",
    description="Roles: all readers. last_runs are the jobs its latest firings made, newest first, with their "
    "status now. The ETag header is the schedule's version.",
    tags=["schedules"],
    security=BEARER_AUTH,
    responses={200: success_response(Schedule, "The schedule"), **error_responses(400, 401, 403, 404)},
)
def get_schedule(schedule_id: ScheduleId) -> Response[Schedule]:
    principal = authenticate(router, READER_ROLES)
    return _with_etag(200, schedule_service().get_schedule(principal, schedule_id))


@router.put(
    f"{SCHEDULES}/<schedule_id>",
    summary="Replace a schedule (expression, time zone, window, enabled, export definition)",
    description="Role: tenant_admin. The body is the whole schedule as it should be. Optimistic locking: send "
    "the version read (expected_version, or the If-Match header); a stale one answers 409 VERSION_CONFLICT.",
    tags=["schedules"],
    security=BEARER_AUTH,
    responses={
        200: success_response(Schedule, "The schedule, changed"),
        **error_responses(400, 401, 403, 404, 409, 413, 415, conflict=_CONFLICT),
    },
)
def update_schedule(
    schedule_id: ScheduleId, request: UpdateScheduleRequest, if_match: IfMatch = None
) -> Response[Schedule]:
    principal = authenticate(router, ADMIN_ROLES)
    version = expected_version(request.expected_version, if_match, of="schedule")
    return _with_etag(
        200, schedule_service().update_schedule(principal, schedule_id, request, expected_version=version)
    )


@router.delete(
    f"{SCHEDULES}/<schedule_id>",
    status_code=204,
    summary="Delete a schedule",
    description="Role: tenant_admin. It fires no more; the jobs it made stay, each still naming it (schedule_id). "
    "With If-Match, only the version read is deleted (409 VERSION_CONFLICT otherwise).",
    tags=["schedules"],
    security=BEARER_AUTH,
    responses={
        204: {"description": "Deleted"},
        **error_responses(400, 401, 403, 404, 409, conflict=_CONFLICT),
    },
)
def delete_schedule(schedule_id: ScheduleId, if_match: IfMatch = None) -> Response[None]:
    principal = authenticate(router, ADMIN_ROLES)
    version = if_match_version(if_match, of="schedule")
    schedule_service().delete_schedule(principal, schedule_id, expected_version=version)
    return Response(status_code=204)
