from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from api.rest import BEARER_AUTH, authenticate, error_responses, success_response
from report_export.core.models.common import READER_ROLES
from report_export.core.models.report_types import ReportType, ReportTypeList

router = Router()

REPORT_TYPES = "/api/v1/report-types"

JobTypeName = Annotated[
    str, Path(description="A job_type as a create request names it, e.g. FEED_INTAKE_EXPORT", max_length=64)
]


@router.get(
    REPORT_TYPES,
    summary="List the report types",
    description="Roles: all readers. Each report type a job may ask for, in a fixed order: its columns (name, "
    "type, nullable, description) in file order, the formats and compressions it may be written in, its sort "
    "key, and the scope fields, filters and period a create request may give, with their limits.",
    tags=["report types"],
    security=BEARER_AUTH,
    responses={200: success_response(ReportTypeList, "Every report type"), **error_responses(401, 403)},
)
def list_report_types() -> ReportTypeList:
    authenticate(router, READER_ROLES)
    # Imported on first use: the report definitions stay out of the API function's cold start.
    from report_export.reports.catalogue import report_types

    return ReportTypeList(items=report_types())


@router.get(
    f"{REPORT_TYPES}/<job_type>",
    summary="Get one report type",
    description="Roles: all readers. The report type a create request names by this job_type (exactly, upper "
    "case); any other name answers 404.",
    tags=["report types"],
    security=BEARER_AUTH,
    responses={200: success_response(ReportType, "The report type"), **error_responses(400, 401, 403, 404)},
)
def get_report_type(job_type: JobTypeName) -> ReportType:
    authenticate(router, READER_ROLES)
    from report_export.reports.catalogue import report_type

    return report_type(job_type)
