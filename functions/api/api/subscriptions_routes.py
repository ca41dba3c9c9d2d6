from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from api.rest import BEARER_AUTH, authenticate, error_responses, json_response, success_response
from report_export.core.models.common import Role
from report_export.core.models.subscriptions import Subscription, SubscriptionPage, SubscriptionRequest
from report_export.subscriptions.service import subscription_service

router = Router()

SUBSCRIPTIONS = "/api/v1/reports/subscriptions"
# Endpoints are people's addresses, and a notice may carry a link to a file: the tenant's admins decide.
ADMIN_ROLES = frozenset({Role.TENANT_ADMIN})

SubscriptionId = Annotated[str, Path(description="The subscription id (a UUIDv7)", max_length=64)]


@router.post(
    SUBSCRIPTIONS,
    status_code=201,
    summary="Subscribe an e-mail address or HTTPS endpoint to the tenant's report notices",
    description="Role: tenant_admin. The endpoint receives the notices of this tenant's reports only (ready, "
    "with a download link; failed), optionally only of some job_types and statuses. SNS first sends it a "
    "confirmation: state is pending_confirmation until someone confirms. An endpoint has one subscription "
    "(409 ENDPOINT_ALREADY_SUBSCRIBED); a tenant has at most MAX_SUBSCRIPTIONS_PER_TENANT (409 "
    "TOO_MANY_SUBSCRIPTIONS).",
    tags=["subscriptions"],
    security=BEARER_AUTH,
    responses={
        201: success_response(Subscription, "The subscription, with its state in SNS"),
        **error_responses(
            400,
            401,
            403,
            409,
            413,
            415,
            conflict="The endpoint is subscribed already (ENDPOINT_ALREADY_SUBSCRIBED), or the tenant has its most "
            "subscriptions (TOO_MANY_SUBSCRIPTIONS)",
        ),
    },
)
def create_subscription(request: SubscriptionRequest) -> Response[Subscription]:
    principal = authenticate(router, ADMIN_ROLES)
    subscription = subscription_service().subscribe(principal, request)
    return json_response(201, subscription, {"Location": f"{SUBSCRIPTIONS}/{subscription.id}"})


@router.get(
    SUBSCRIPTIONS,
    summary="List the tenant's notice subscriptions, oldest first",
    description="Role: tenant_admin. Each with its state in SNS now (pending_confirmation, confirmed, or lapsed "
    "when it was never confirmed and SNS removed it).",
    tags=["subscriptions"],
    security=BEARER_AUTH,
    responses={200: success_response(SubscriptionPage, "The subscriptions"), **error_responses(401, 403)},
)
def list_subscriptions() -> SubscriptionPage:
    principal = authenticate(router, ADMIN_ROLES)
    return SubscriptionPage(items=subscription_service().list_subscriptions(principal))


@router.get(
    f"{SUBSCRIPTIONS}/<subscription_id>",
    summary="Get one notice subscription, with its state in SNS",
    description="Role: tenant_admin.",
    tags=["subscriptions"],
    security=BEARER_AUTH,
    responses={200: success_response(Subscription, "The subscription"), **error_responses(400, 401, 403, 404)},
)
def get_subscription(subscription_id: SubscriptionId) -> Subscription:
    principal = authenticate(router, ADMIN_ROLES)
    return subscription_service().get_subscription(principal, subscription_id)


@router.delete(
    f"{SUBSCRIPTIONS}/<subscription_id>",
    status_code=204,
    summary="Remove a notice subscription",
    description="Role: tenant_admin. The endpoint receives no more notices.",
    tags=["subscriptions"],
    security=BEARER_AUTH,
    responses={204: {"description": "Removed"}, **error_responses(400, 401, 403, 404)},
)
def delete_subscription(subscription_id: SubscriptionId) -> Response[None]:
    principal = authenticate(router, ADMIN_ROLES)
    subscription_service().unsubscribe(principal, subscription_id)
    return Response(status_code=204)
