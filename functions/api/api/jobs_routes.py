from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from api.paging import cursor_after, position_of
from api.rest import BEARER_AUTH, authenticate, error_responses, json_response, success_response
from report_export.core.history import HistoryPage
from report_export.core.models.common import READER_ROLES, WRITER_ROLES, JobStatus, JobType
from report_export.core.models.jobs import CreateJobRequest, Job, JobPage
from report_export.jobs.downloads import DownloadLink, download_service
from report_export.jobs.service import SizeCheck, job_service

router = Router()

JOBS = "/api/v1/reports/jobs"


JobId = Annotated[str, Path(description="The job id (a UUIDv7)", max_length=64)]


@router.post(
    JOBS,
    status_code=201,
    summary="Create an export job",
    description="Roles: tenant_admin, farm_manager. The tenant and requester come from the token. "
    "Repeating a request with the same idempotency_key and parameters answers 200 with the original job "
    "and the header Idempotent-Replayed: true.",
    tags=["jobs"],
    security=BEARER_AUTH,
    responses={
        201: success_response(Job, "The job, queued for generation"),
        200: success_response(Job, "Idempotent replay: the job first created with this key"),
        **error_responses(
            400, 401, 403, 409, 413, 415, 422, 429, conflict="The idempotency_key was used with other parameters"
        ),
    },
)
def create_job(request: CreateJobRequest) -> Response[Job]:
    principal = authenticate(router, WRITER_ROLES)
    outcome = job_service().create_job(principal, request, size_check=_size_check())
    if outcome.replayed:
        return json_response(200, outcome.job, {"Idempotent-Replayed": "true"})
    return json_response(201, outcome.job, {"Location": f"{JOBS}/{outcome.job.id}"})


def _size_check() -> SizeCheck:
    # Imported on the first create, not at the cold start: the estimate uses the pipeline's writers.
    from report_export.generation.report_size import report_size_check

    return report_size_check()


@router.get(
    JOBS,
    summary="List jobs, newest first",
    description="Roles: all readers. Filter by status, job_type and expired; page with limit and next_cursor.",
    tags=["jobs"],
    security=BEARER_AUTH,
    responses={200: success_response(JobPage, "A page of jobs"), **error_responses(400, 401, 403)},
)
def list_jobs(
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status")] = None,
    job_type: Annotated[JobType | None, Query(description="Only jobs of this type")] = None,
    expired: Annotated[
        bool | None, Query(description="true: only jobs whose file has expired; false: only those whose has not")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
    next_cursor: Annotated[str | None, Query(max_length=1024, description="From the previous page")] = None,
) -> JobPage:
    principal = authenticate(router, READER_ROLES)
    query = {"tenant": principal.tenant_id, "status": status, "job_type": job_type, "expired": expired}
    jobs, last = job_service().list_jobs(
        principal,
        status=status,
        job_type=job_type,
        limit=limit,
        after=position_of(next_cursor, **query),
        expired=expired,
    )
    return JobPage(items=jobs, next_cursor=cursor_after(last, **query))


@router.get(
    f"{JOBS}/<jobId>",
    summary="Get one job",
    description="Roles: all readers.",
    tags=["jobs"],
    security=BEARER_AUTH,
    responses={200: success_response(Job, "The job"), **error_responses(400, 401, 403, 404)},
)
def get_job(jobId: JobId) -> Job:
    principal = authenticate(router, READER_ROLES)
    return job_service().get_job(principal, jobId)


@router.delete(
    f"{JOBS}/<jobId>",
    summary="Cancel a job",
    description="Roles: tenant_admin, farm_manager. A queued job is cancelled at once (200); a running job "
    "records cancel_requested and stops at the generator's next checkpoint (202); a finished job cannot be "
    "cancelled (409).",
    tags=["jobs"],
    security=BEARER_AUTH,
    responses={
        200: success_response(Job, "The job, cancelled"),
        202: success_response(Job, "Cancel requested: the running job stops at its next checkpoint"),
        **error_responses(400, 401, 403, 404, 409, conflict="The job has already finished"),
    },
)
def cancel_job(jobId: JobId) -> Response[Job]:
    principal = authenticate(router, WRITER_ROLES)
    outcome = job_service().cancel_job(principal, jobId)
    return json_response(200 if outcome.completed else 202, outcome.job)


@router.get(
    f"{JOBS}/<jobId>/download",
    summary="Get a short-lived download URL for a finished report",
    description="Roles: all readers. Each call mints a fresh presigned URL (TTL REPORT_DOWNLOAD_TTL_SEC) and is "
    "logged as an audit event.",
    tags=["downloads"],
    security=BEARER_AUTH,
    responses={
        200: success_response(DownloadLink, "A presigned URL and when it stops working"),
        **error_responses(400, 401, 403, 404, 409, 410, conflict="The report is not ready (REPORT_NOT_READY)"),
    },
)
def download_job(jobId: JobId) -> DownloadLink:
    principal = authenticate(router, READER_ROLES)
    return download_service().download_link(principal, jobId)


@router.get(
    f"{JOBS}/<jobId>/history",
    summary="The report's audit history, oldest first",
    description="Roles: all readers. Created, each download URL issued (to whom, how), each re-export requested, "
    "cancelled and completed (by whom, why, with what result), each legal hold placed and lifted. Page with limit "
    "and next_cursor. chain says whether the whole history is as written: each entry carries the hash of the one "
    "before it, so an entry edited or removed afterwards breaks it (intact: false, and where).",
    tags=["jobs"],
    security=BEARER_AUTH,
    responses={200: success_response(HistoryPage, "A page of history entries"), **error_responses(400, 401, 403, 404)},
)
def job_history(
    jobId: JobId,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 50,
    next_cursor: Annotated[str | None, Query(max_length=1024, description="From the previous page")] = None,
) -> HistoryPage:
    principal = authenticate(router, READER_ROLES)
    query = {"tenant": principal.tenant_id, "history_of": jobId}
    events, last, chain = job_service().job_history(
        principal, jobId, limit=limit, after=position_of(next_cursor, **query)
    )
    return HistoryPage(items=events, next_cursor=cursor_after(last, **query), chain=chain)


@router.get(
    f"{JOBS}/<jobId>/file",
    summary="Follow a signed download link",
    description="No bearer token: the signed token names the job, its tenant and an expiry. Answers 302 to a "
    "fresh presigned URL, so the link outlives presigned URLs (e.g. in e-mails).",
    tags=["downloads"],
    responses={
        302: {"description": "Redirect to a fresh presigned URL"},
        **error_responses(400, 401, 403, 404, 409, 410, conflict="The report is not ready (REPORT_NOT_READY)"),
    },
)
def download_file_by_link(
    jobId: JobId,
    token: Annotated[str, Query(min_length=1, max_length=1024, description="The signed token from the link")],
) -> Response[str]:
    location = download_service().redirect_for_link(jobId, token)
    return Response(status_code=302, headers={"Location": location}, body="")
