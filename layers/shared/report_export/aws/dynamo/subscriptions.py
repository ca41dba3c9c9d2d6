"""Tenants' notice subscriptions in the table: the record, the tenant's count, and the claim on the endpoint."""

from __future__ import annotations

from report_export.aws.dynamo import keys
from report_export.aws.dynamo.codecs import (
    StoredSubscription,
    serialize,
    stored_subscription,
    subscription_endpoint_item,
    subscription_item,
)
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.tenant_counts import TenantCount
from report_export.aws.dynamo.updates import ConditionalUpdate, put_new


class EndpointClaimed(Exception):
    """Another subscription (of this tenant or another) already delivers to this endpoint."""


class SubscriptionRepository:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.counts = TenantCount(table, keys.subscription_count_key)

    def create(self, stored: StoredSubscription, *, endpoint_digest: str, at_most: int) -> None:
        """The record, the claim on its endpoint and the tenant's count, in one transaction.

        CountFull when the tenant has `at_most` subscriptions; EndpointClaimed when the endpoint is taken."""
        subscription = stored.subscription
        claim = subscription_endpoint_item(subscription, endpoint_digest)
        claim_key = keys.subscription_endpoint_key(subscription.protocol.value, endpoint_digest)

        def endpoint_free() -> bool:
            return self.table.get(claim_key, consistent=True) is None

        items = [put_new(self.table.name, subscription_item(stored)), put_new(self.table.name, claim)]
        try:
            self.counts.add_with(subscription.tenant_id, items, at_most=at_most, still_wanted=endpoint_free)
        except StaleWrite:
            if not endpoint_free():
                raise EndpointClaimed() from None
            raise

    def record_arn(self, tenant_id: str, subscription_id: str, arn: str) -> None:
        self.table.update(
            ConditionalUpdate(
                key=keys.subscription_key(tenant_id, subscription_id),
                update_expression="SET subscription_arn = :arn",
                condition_expression="attribute_exists(PK)",
                names={},
                values=serialize({":arn": arn}),
            )
        )

    def get(self, tenant_id: str, subscription_id: str) -> StoredSubscription | None:
        item = self.table.get(keys.subscription_key(tenant_id, subscription_id), consistent=True)
        return stored_subscription(item) if item else None

    def all_of(self, tenant_id: str) -> list[StoredSubscription]:
        """The tenant's subscriptions, oldest first (a tenant has few: MAX_SUBSCRIPTIONS_PER_TENANT)."""
        query = {
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": serialize(
                {":pk": keys.tenant_pk(tenant_id), ":prefix": keys.subscription_sk("")}
            ),
            "ConsistentRead": True,
        }
        return [stored_subscription(item) for item in self.table.read_all(query)]

    def delete(self, stored: StoredSubscription, *, endpoint_digest: str) -> None:
        """The record, its endpoint's claim and one off the tenant's count, in one transaction."""
        subscription = stored.subscription
        record_key = keys.subscription_key(subscription.tenant_id, subscription.id)
        items = [
            {
                "Delete": {
                    "TableName": self.table.name,
                    "Key": record_key,
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {
                "Delete": {
                    "TableName": self.table.name,
                    "Key": keys.subscription_endpoint_key(subscription.protocol.value, endpoint_digest),
                }
            },
        ]
        self.counts.remove_with(
            subscription.tenant_id,
            items,
            still_wanted=lambda: self.table.get(record_key, consistent=True) is not None,
        )
