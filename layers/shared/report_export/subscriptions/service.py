"""The notice subscriptions use cases: a tenant admin adds, lists and removes the endpoints that receive
the tenant's report notices.

Each is an SNS subscription on the one report topic whose filter policy names the tenant, so a notice
(which may carry a link that downloads the file without login) never reaches another tenant's endpoint.
The record is written before SNS is asked and removed again if SNS refuses, so every subscription SNS
has is one the tenant can see and remove.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache

from botocore.exceptions import BotoCoreError, ClientError
from uuid6 import uuid7

from report_export.aws import clients
from report_export.aws.dynamo.codecs import StoredSubscription
from report_export.aws.dynamo.subscriptions import EndpointClaimed, SubscriptionRepository
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.tenant_counts import CountFull
from report_export.aws.topic_subscriptions import EndpointRefused, TopicSubscriptions
from report_export.core.auth import Principal
from report_export.core.errors import (
    EndpointAlreadySubscribed,
    NotFound,
    TooManySubscriptions,
    ValidationFailed,
)
from report_export.core.models.common import JOB_ID_PATTERN, now_utc
from report_export.core.models.subscriptions import Subscription, SubscriptionRequest, SubscriptionState
from report_export.core.observability import logger, metrics
from report_export.core.settings import get_settings

_NOT_FOUND = "No such subscription"
_SUBSCRIPTION_ID = re.compile(JOB_ID_PATTERN)


def filter_policy(tenant_id: str, request: SubscriptionRequest) -> dict[str, list[str]]:
    """What SNS matches each notice's attributes against: always the tenant, then what the admin chose."""
    policy = {"tenant_id": [tenant_id]}
    if request.job_types:
        policy["job_type"] = [job_type.value for job_type in request.job_types]
    if request.statuses:
        policy["status"] = [status.value for status in request.statuses]
    return policy


def endpoint_digest(request: SubscriptionRequest) -> str:
    # The claim's key: the endpoint itself (an address, a URL with its query) stays out of key space.
    return hashlib.sha256(request.endpoint_identity.encode()).hexdigest()


class SubscriptionService:
    def __init__(self, repository: SubscriptionRepository, topic: TopicSubscriptions, *, at_most: int) -> None:
        self._repository = repository
        self._topic = topic
        self._at_most = at_most

    def subscribe(self, principal: Principal, request: SubscriptionRequest) -> Subscription:
        subscription = Subscription(
            **request.model_dump(),
            id=str(uuid7()),
            tenant_id=principal.tenant_id,
            state=SubscriptionState.SUBSCRIBING,
            created_at=now_utc(),
            created_by=principal.subject,
        )
        stored = StoredSubscription(subscription, None)
        digest = endpoint_digest(request)
        try:
            self._repository.create(stored, endpoint_digest=digest, at_most=self._at_most)
        except CountFull as full:
            raise TooManySubscriptions(
                f"The tenant has {full.at_most} subscriptions, the most it may have; remove one first"
            ) from None
        except EndpointClaimed:
            raise EndpointAlreadySubscribed(
                "This endpoint already receives report notices; remove that subscription first"
            ) from None
        try:
            arn = self._topic.subscribe(
                request.protocol.value, request.endpoint, filter_policy(principal.tenant_id, request)
            )
        except EndpointRefused:
            self._repository.delete(stored, endpoint_digest=digest)
            raise ValidationFailed("endpoint: SNS does not accept it for this protocol") from None
        except Exception:
            # Not subscribed as far as anyone can tell: nothing is left that the tenant cannot see.
            self._repository.delete(stored, endpoint_digest=digest)
            raise
        try:
            self._repository.record_arn(principal.tenant_id, subscription.id, arn)
        except Exception:
            self._topic.unsubscribe(arn)
            self._repository.delete(stored, endpoint_digest=digest)
            raise
        metrics.add_metric(name="SubscriptionsAdded", unit="Count", value=1)
        logger.info("Subscription added", extra={"subscription_id": subscription.id, "protocol": request.protocol})
        try:
            state = self._topic.state(arn)
        except (BotoCoreError, ClientError):
            # Made all the same: a retry would be refused as already subscribed, so the answer must not fail.
            logger.warning("Could not read the new subscription's state", extra={"subscription_id": subscription.id})
            state = SubscriptionState.PENDING_CONFIRMATION
        return subscription.model_copy(update={"state": state})

    def list_subscriptions(self, principal: Principal) -> list[Subscription]:
        return [self._shown(stored) for stored in self._repository.all_of(principal.tenant_id)]

    def get_subscription(self, principal: Principal, subscription_id: str) -> Subscription:
        return self._shown(self._stored(principal, subscription_id))

    def unsubscribe(self, principal: Principal, subscription_id: str) -> None:
        stored = self._stored(principal, subscription_id)
        subscription = stored.subscription
        # SNS first: a record removed with its subscription still live would leave notices going to an
        # endpoint nobody can see. A request that stopped before it noted the ARN is found by its endpoint.
        arn = stored.subscription_arn or self._topic.find(subscription.protocol.value, subscription.endpoint)
        if arn is not None:
            self._topic.unsubscribe(arn)
        try:
            self._repository.delete(stored, endpoint_digest=endpoint_digest(subscription))
        except StaleWrite:
            # Another DELETE of it got there first.
            raise NotFound(_NOT_FOUND) from None
        logger.info("Subscription removed", extra={"subscription_id": subscription.id})

    def _stored(self, principal: Principal, subscription_id: str) -> StoredSubscription:
        stored = None
        if _is_id(subscription_id):
            stored = self._repository.get(principal.tenant_id, subscription_id)
        if stored is None:
            raise NotFound(_NOT_FOUND)
        return stored

    def _shown(self, stored: StoredSubscription) -> Subscription:
        if stored.subscription_arn is None:
            return stored.subscription
        return stored.subscription.model_copy(update={"state": self._topic.state(stored.subscription_arn)})


def _is_id(value: str) -> bool:
    return _SUBSCRIPTION_ID.fullmatch(value) is not None


@cache
def subscription_service() -> SubscriptionService:
    settings = get_settings()
    return SubscriptionService(
        SubscriptionRepository(Table(clients.dynamodb(), settings.table_name)),
        TopicSubscriptions(clients.sns(), topic_arn=settings.report_topic_arn),
        at_most=settings.max_subscriptions_per_tenant,
    )
