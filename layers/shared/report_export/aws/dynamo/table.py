"""The one place that sends requests to the table and turns its refusals into domain terms."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from report_export.aws.dynamo.codecs import deserialize, serialize
from report_export.aws.dynamo.updates import ConditionalUpdate

# How many items one Query reads when a filter may drop some: enough that a sparse filter
# does not cost a round trip per item, small enough to keep one response well under 1 MB.
_FILTERED_QUERY_PAGE = 200
_REFUSED_TRANSACTION_CODES = ("TransactionCanceledException", "TransactionConflictException")


class StaleWrite(Exception):
    """The item changed since it was read (version or status no longer as expected); for a
    transaction, one of its conditions failed or it collided with another transaction."""


class Table:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.name = table_name

    def get(self, key: dict[str, Any], *, consistent: bool = False) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=self.name, Key=key, ConsistentRead=consistent)
        return response.get("Item")

    def update(self, update: ConditionalUpdate) -> dict[str, Any]:
        """Apply one conditional update and return the item as it is now (StaleWrite when its condition fails)."""
        try:
            response = self.client.update_item(**update.as_request(self.name), ReturnValues="ALL_NEW")
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleWrite(update.key["SK"]["S"]) from None
            raise
        return response["Attributes"]

    def put(self, item: dict[str, Any], *, condition: str, names: dict[str, str], values: dict[str, Any]) -> None:
        """Write a whole item if its condition holds (StaleWrite otherwise)."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "Item": serialize(item),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            request["ExpressionAttributeValues"] = serialize(values)
        self._conditionally(self.client.put_item, request, item["SK"])

    def delete(self, key: dict[str, Any], *, condition: str, names: dict[str, str], values: dict[str, Any]) -> None:
        """Delete an item if its condition holds (StaleWrite otherwise)."""
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": key,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            request["ExpressionAttributeValues"] = serialize(values)
        self._conditionally(self.client.delete_item, request, key["SK"]["S"])

    def get_many(self, keys: list[dict[str, Any]], *, consistent: bool = False) -> list[dict[str, Any]]:
        """The items that exist among `keys` (at most 100), in no particular order."""
        found: list[dict[str, Any]] = []
        pending: dict[str, Any] = {self.name: {"Keys": keys, "ConsistentRead": consistent}} if keys else {}
        # Unprocessed keys (throttling) are asked for again; BatchGetItem gives no order anyway.
        for _ in range(5):
            if not pending:
                break
            response = self.client.batch_get_item(RequestItems=pending)
            found.extend(response.get("Responses", {}).get(self.name, []))
            pending = response.get("UnprocessedKeys") or {}
        return found

    @staticmethod
    def _conditionally(send: Any, request: dict[str, Any], what: str) -> None:
        try:
            send(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleWrite(what) from None
            raise

    def transact(self, items: list[dict[str, Any]], *, token: str | None = None) -> None:
        """All or nothing; StaleWrite when a condition failed or another transaction got in the way."""
        request: dict[str, Any] = {"TransactItems": items}
        if token is not None:
            request["ClientRequestToken"] = token
        try:
            self.client.transact_write_items(**request)
        except ClientError as error:
            if error.response["Error"]["Code"] in _REFUSED_TRANSACTION_CODES:
                raise StaleWrite("transaction cancelled") from None
            raise

    def read_all(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item the query matches, page after page (for what is bounded: one report's history, a
        tenant's subscriptions)."""
        request = {**query, "TableName": self.name}
        found: list[dict[str, Any]] = []
        while True:
            response = self.client.query(**request)
            found.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def read_page(
        self, query: dict[str, Any], start_key: dict[str, Any] | None, *, limit: int, filtered: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` items and whether more match after them; never short while matches remain."""
        # One more than asked for tells whether a next page exists without an empty last page.
        wanted = limit + 1
        found: list[dict[str, Any]] = []
        while len(found) < wanted:
            page_size = _FILTERED_QUERY_PAGE if filtered else wanted - len(found)
            request = {**query, "TableName": self.name, "Limit": page_size}
            if start_key:
                request["ExclusiveStartKey"] = serialize(start_key)
            response = self.client.query(**request)
            found.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            start_key = deserialize(response["LastEvaluatedKey"])
        return found[:limit], len(found) > limit
