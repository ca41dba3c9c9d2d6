"""Subscriptions to the report topic in SNS: each with a filter policy, so that it receives only the notices
it was made for (one tenant's, of some report types and outcomes)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from report_export.core.models.subscriptions import SubscriptionState


class EndpointRefused(Exception):
    """SNS will not deliver to this endpoint (an address or URL it does not accept)."""


class TopicSubscriptions:
    def __init__(self, client: Any, *, topic_arn: str) -> None:
        self._client = client
        self._topic = topic_arn

    def subscribe(self, protocol: str, endpoint: str, filter_policy: dict[str, list[str]]) -> str:
        """Subscribe the endpoint and return the subscription's ARN (SNS sends it a confirmation first)."""
        try:
            response = self._client.subscribe(
                TopicArn=self._topic,
                Protocol=protocol,
                Endpoint=endpoint,
                # The policy is part of the subscription from its first message: no moment without it.
                Attributes={"FilterPolicyScope": "MessageAttributes", "FilterPolicy": json.dumps(filter_policy)},
                ReturnSubscriptionArn=True,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "InvalidParameter":
                raise EndpointRefused() from None
            raise
        return response["SubscriptionArn"]

    def state(self, arn: str) -> SubscriptionState:
        try:
            attributes = self._client.get_subscription_attributes(SubscriptionArn=arn)["Attributes"]
        except ClientError as error:
            if error.response["Error"]["Code"] == "NotFound":
                return SubscriptionState.LAPSED
            raise
        if attributes.get("PendingConfirmation") == "true":
            return SubscriptionState.PENDING_CONFIRMATION
        return SubscriptionState.CONFIRMED

    def unsubscribe(self, arn: str) -> None:
        """Remove it; one SNS no longer has (it lapsed unconfirmed) is already as wanted."""
        try:
            self._client.unsubscribe(SubscriptionArn=arn)
        except ClientError as error:
            if error.response["Error"]["Code"] != "NotFound":
                raise

    def find(self, protocol: str, endpoint: str) -> str | None:
        """The ARN of the topic's confirmed subscription of this endpoint, if there is one."""
        paginator = self._client.get_paginator("list_subscriptions_by_topic")
        for page in paginator.paginate(TopicArn=self._topic):
            for found in page.get("Subscriptions", []):
                if found["Protocol"] == protocol and found["Endpoint"] == endpoint:
                    arn = found["SubscriptionArn"]
                    # A pending one is listed without an ARN; it lapses by itself if nobody confirms it.
                    return arn if arn.startswith("arn:") else None
        return None
