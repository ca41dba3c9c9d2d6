"""The HTTP edge shared by the API functions: resolver, error envelope, authentication, OpenAPI.

Every error leaves through one of the handlers below as {"error": {"code", "message", "traceId"}}.
Powertools validates a request before any route code runs; that is safe because in AWS the
HTTP API's JWT authorizer has already turned away requests without a valid token.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from api.bodies import checked_event
from report_export.core.auth import Principal, authorize
from report_export.core.errors import AuthorizerRejection, ErrorEnvelope, ServiceError, describe_validation_errors
from report_export.core.models.common import Role
from report_export.core.observability import logger
from report_export.core.settings import get_settings

API_TITLE = "Report export service"
API_VERSION = "1.0.0"
BEARER_AUTH = [{"bearerAuth": []}]

_UNAVAILABLE = "A service this API depends on did not answer in time; try again"
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "ServiceUnavailable",
        "InternalServerError",
        "InternalFailure",
        "TransactionCanceledException",
        "TransactionInProgressException",
    }
)

_ERROR_DESCRIPTIONS = {
    400: "Invalid request (VALIDATION_ERROR, INVALID_CURSOR)",
    401: 'Missing, expired or forged token: API Gateway\'s authorizer answers {"message": "Unauthorized"}; '
    "a valid token without a tenant is answered with the envelope (UNAUTHORIZED)",
    403: "The caller's role does not allow this (FORBIDDEN)",
    404: "No such resource for this tenant (NOT_FOUND)",
    409: "Conflict with the current state",
    413: "The request body is larger than the API takes (PAYLOAD_TOO_LARGE)",
    415: "The request body is not UTF-8 application/json (UNSUPPORTED_MEDIA_TYPE)",
    422: "The report would be larger than the service makes, as estimated from the upstream's count "
    "(REPORT_TOO_LARGE); ask for a shorter period or a narrower scope",
    429: "The tenant has its most jobs queued or running (TOO_MANY_ACTIVE_JOBS); retry after Retry-After seconds",
    410: "The report file has expired or no longer exists; re-export it (REPORT_EXPIRED, REPORT_FILE_GONE)",
    503: "A dependency is not available (SERVICE_UNAVAILABLE)",
}


def success_response(model: type[BaseModel], description: str) -> dict[str, Any]:
    """An OpenAPI success entry (Powertools leaves it out once a route lists any responses)."""
    return {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}


def error_responses(*statuses: int, conflict: str | None = None) -> dict[int, Any]:
    """OpenAPI response entries for a route's error statuses, all with the one envelope. Every route that
    declares its errors reads or writes AWS, so each may also answer 503 when AWS cannot be reached."""
    responses: dict[int, Any] = {}
    for status in sorted({*statuses, 503}):
        description = conflict if status == 409 and conflict else _ERROR_DESCRIPTIONS[status]
        # A 401 comes from the gateway's authorizer (its own body) or from the function (the envelope).
        model = ErrorEnvelope | AuthorizerRejection if status == 401 else ErrorEnvelope
        responses[status] = {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}
    return responses


def trace_id(router: BaseRouter) -> str:
    return router.current_event.request_context.request_id or "unknown"


def error_response(
    router: BaseRouter, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
) -> Response:
    envelope = {"error": {"code": code, "message": message, "traceId": trace_id(router)}}
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(envelope), headers=headers
    )


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


class ApiResolver(APIGatewayHttpResolver):
    """Powertools' resolver, behind the one body check (api.bodies).

    Powertools would answer some bodies with a 500 (another media type, bytes that are not UTF-8, JSON
    nested too deep) and read others loosely (the first element of an array body, NaN as a number):
    every body is checked and re-encoded before it routes anything.
    """

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            event = checked_event(event)
        except ServiceError as error:
            request_id = (event.get("requestContext") or {}).get("requestId") or "unknown"
            envelope = {"error": {"code": error.code, "message": error.message, "traceId": request_id}}
            return {
                "statusCode": error.status,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": json.dumps(envelope),
                "isBase64Encoded": False,
                "cookies": [],
            }
        return super().resolve(event, context)


def create_resolver() -> APIGatewayHttpResolver:
    app = ApiResolver(enable_validation=True)

    @app.exception_handler(ServiceError)
    def _service_error(error: ServiceError) -> Response:
        if error.status >= 500:
            logger.error("Request failed", extra={"code": error.code, "reason": error.message})
        return error_response(app, error.status, error.code, error.message, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response:
        return error_response(app, 400, "VALIDATION_ERROR", describe_validation_errors(error.errors()))

    @app.not_found
    def _no_route(_: NotFoundError) -> Response:
        # The path is not quoted back: it is whatever the client sent, of any length and content.
        method = app.current_event.http_method
        return error_response(app, 404, "NOT_FOUND", f"No such route for {method}; /api-docs lists the routes")

    @app.exception_handler(BotoCoreError)
    def _aws_unreachable(_: BotoCoreError) -> Response:
        # No connection, no answer in time, or no time left to wait for one (report_export.aws.deadline).
        logger.exception("An AWS call failed")
        return error_response(app, 503, "SERVICE_UNAVAILABLE", _UNAVAILABLE)

    @app.exception_handler(ClientError)
    def _aws_refused(error: ClientError) -> Response:
        logger.exception("An AWS call was refused")
        if _is_transient(error):
            return error_response(app, 503, "SERVICE_UNAVAILABLE", _UNAVAILABLE)
        return error_response(
            app, HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL", "Something went wrong on our side; quote the traceId"
        )

    @app.exception_handler(Exception)
    def _unexpected(_: Exception) -> Response:
        logger.exception("Unexpected error")
        return error_response(
            app, HTTPStatus.INTERNAL_SERVER_ERROR, "INTERNAL", "Something went wrong on our side; quote the traceId"
        )

    return app


def _is_transient(error: ClientError) -> bool:
    """Throttling or a failure on AWS's side: worth the client's retry, unlike a request AWS found wrong."""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return error.response.get("Error", {}).get("Code") in _TRANSIENT_CODES or status >= 500


def authenticate(router: BaseRouter, allowed: Iterable[Role]) -> Principal:
    """The caller, from the JWT authorizer's claims; Unauthorized or Forbidden otherwise."""
    settings = get_settings()
    principal = authorize(
        router.current_event.raw_event,
        allowed,
        tenant_claim=settings.tenant_claim,
        roles_claim=settings.roles_claim,
    )
    logger.append_keys(tenant_id=principal.tenant_id, requested_by=principal.subject)
    return principal


def openapi_document(app: APIGatewayHttpResolver) -> dict[str, Any]:
    """The OpenAPI document as the API really behaves.

    Powertools documents request validation failures as 422 with its own body; this API
    answers them as 400 with the error envelope, so those entries are replaced. It also gives a
    204 a JSON body of null, which a 204 never has.
    """
    # Imported here: the OpenAPI models cost a tenth of a second at import, and only /api-docs needs them.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    schema = app.get_openapi_schema(
        title=API_TITLE,
        version=API_VERSION,
        description="Asynchronous report exports: create a job, follow it, download the file.",
        security_schemes={"bearerAuth": HTTPBearer(bearerFormat="JWT")},
    )
    document = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
    envelope_ref = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            responses.get("204", {}).pop("content", None)
            if responses.pop("422", None) is not None:
                responses.setdefault(
                    "400",
                    {
                        "description": _ERROR_DESCRIPTIONS[400],
                        "content": {content_types.APPLICATION_JSON: {"schema": envelope_ref}},
                    },
                )
    schemas = document.get("components", {}).get("schemas", {})
    for powertools_only in ("HTTPValidationError", "ValidationError"):
        schemas.pop(powertools_only, None)
    return document


# The page may load nothing but itself: Swagger UI's script and styles are inlined and its icons are data: URIs,
# so a CDN, the online validator's badge or a web font would only be a request to the internet that fails offline.
# "Try it out" may call only this origin, where the document's relative server ("/") points.
_SWAGGER_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'unsafe-inline'",
        "style-src 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
    )
)

# Powertools' own page sets none of these: without validatorUrl Swagger UI defaults to validator.swagger.io, and
# it registers a standalone preset that its bundle does not contain.
_SWAGGER_OPTIONS = {
    "dom_id": "#swagger-ui",
    "layout": "BaseLayout",
    "docExpansion": "list",
    "deepLinking": True,
    "filter": True,
    "showExtensions": True,
    "showCommonExtensions": True,
    "validatorUrl": None,
    "persistAuthorization": False,
}


def swagger_page(document: dict[str, Any]) -> str:
    """Swagger UI with its script and styles inlined from the Powertools package: it works with no internet."""
    import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger_ui

    assets = Path(swagger_ui.__file__).parent
    script = (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    styles = (assets / "swagger-ui.min.css").read_text(encoding="utf-8")
    # "<" only ever occurs inside JSON strings, where \u003c reads the same: no "</script>" or "<!--" in the document
    # can end or confuse the script element.
    options = json.dumps({**_SWAGGER_OPTIONS, "spec": document}).replace("<", "\\u003c")
    title = html.escape(f"{document['info']['title']}: API")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="{_SWAGGER_CSP}">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>{styles}</style>
</head>
<body>
<div id="swagger-ui">Loading...</div>
<script>{script}</script>
<script>
  var options = {options};
  options.presets = [SwaggerUIBundle.presets.apis];
  var ui = SwaggerUIBundle(options);
  // The link under the title and the base the relative server is resolved against: the JSON document beside this
  // page, under whatever prefix the page is served (Powertools' page points them at the page itself, HTML).
  ui.specActions.updateUrl(window.location.pathname.replace(/[/]*$/, "/openapi.json"));
</script>
</body>
</html>
"""
