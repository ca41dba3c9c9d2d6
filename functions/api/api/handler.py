"""API Lambda: health, docs, and the jobs, re-exports, schedules, subscriptions and report-types APIs behind the
HTTP API."""

from functools import cache

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from api import (
    health_routes,
    jobs_routes,
    legal_holds_routes,
    reexports_routes,
    report_types_routes,
    schedules_routes,
    subscriptions_routes,
)
from api.rest import create_resolver, json_response, openapi_document, swagger_page
from report_export.aws.deadline import deadline
from report_export.core.observability import logger, metrics, tracer

app = create_resolver()
app.include_router(health_routes.router)
app.include_router(jobs_routes.router)
app.include_router(legal_holds_routes.router)
app.include_router(reexports_routes.router)
app.include_router(schedules_routes.router)
app.include_router(subscriptions_routes.router)
app.include_router(report_types_routes.router)


@cache
def _swagger_html() -> str:
    return swagger_page(openapi_document(app))


@app.get("/api-docs/openapi.json", include_in_schema=False)
def openapi_json() -> Response[dict]:
    return json_response(200, openapi_document(app))


@app.get("/api-docs", include_in_schema=False)
def swagger_ui() -> Response[str]:
    return Response(status_code=200, content_type=content_types.TEXT_HTML, body=_swagger_html())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    with deadline.of(context):
        return app.resolve(event, context)
