from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from api.rest import BEARER_AUTH, authenticate, error_responses, success_response
from report_export.core.models.common import Role
from report_export.core.models.jobs import LegalHold, LegalHoldRequest
from report_export.jobs.legal_holds import legal_holds

router = Router()

LEGAL_HOLD = "/api/v1/reports/jobs/<jobId>/legal-hold"
ADMIN_ROLES = frozenset({Role.TENANT_ADMIN})

JobId = Annotated[str, Path(description="The job id (a UUIDv7)", max_length=64)]
_CONFLICT = "The report has no file to hold (REPORT_NOT_READY)"


@router.put(
    LEGAL_HOLD,
    summary="Place a legal hold on a report and every file of its lineage",
    description="Role: tenant_admin. The report's file and its re-exports' new files are held in S3 (Object Lock): "
    "no delete, the retention rule's included, removes them until the hold is lifted, and the report's downloads "
    "answer past expires_at. Recorded in the report's history with the reason. A report held already answers its "
    "hold as it is.",
    tags=["legal holds"],
    security=BEARER_AUTH,
    responses={
        200: success_response(LegalHold, "The hold, with each file and version it keeps"),
        **error_responses(400, 401, 403, 404, 409, 410, 413, 415, conflict=_CONFLICT),
    },
)
def place_legal_hold(jobId: JobId, request: LegalHoldRequest) -> LegalHold:
    principal = authenticate(router, ADMIN_ROLES)
    return legal_holds().place(principal, jobId, request.reason)


@router.delete(
    LEGAL_HOLD,
    status_code=204,
    summary="Lift a report's legal hold",
    description="Role: tenant_admin. The files go back to their retention; the history records who lifted the "
    "hold and why. A re-export's file held with its original is lifted there (409 HELD_THROUGH_LINEAGE).",
    tags=["legal holds"],
    security=BEARER_AUTH,
    responses={
        204: {"description": "Lifted"},
        **error_responses(
            400,
            401,
            403,
            404,
            409,
            conflict="The report is not held (NOT_HELD), or held with its original (HELD_THROUGH_LINEAGE)",
        ),
    },
)
def lift_legal_hold(
    jobId: JobId,
    reason: Annotated[str, Query(min_length=1, max_length=500, description="Why the hold ends")],
) -> Response[None]:
    principal = authenticate(router, ADMIN_ROLES)
    legal_holds().lift(principal, jobId, reason)
    return Response(status_code=204)
