from aws_lambda_powertools.event_handler.api_gateway import Router

from api.rest import error_responses, success_response
from report_export.core.models.jobs import HealthStatus
from report_export.jobs.service import job_service

router = Router()


@router.get("/api/health", summary="Liveness: the function answers", tags=["health"])
def health() -> HealthStatus:
    return HealthStatus(status="ok")


@router.get(
    "/api/ready",
    summary="Readiness: the table answers and the signing secret is readable",
    tags=["health"],
    responses={200: success_response(HealthStatus, "Ready to serve"), **error_responses(503)},
)
def ready() -> HealthStatus:
    job_service().check_ready()
    return HealthStatus(status="ready")
