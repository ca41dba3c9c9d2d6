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
