"""A count of one tenant's things of a kind (schedules, notice subscriptions), kept exact by writing it in
the same transaction that adds or removes one, so a burst of creates cannot go past the limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from report_export.aws.dynamo.codecs import serialize
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.updates import ConditionalUpdate

# Creates and deletes of one tenant's things all write its count: transactions that collide on it are
# tried again a few times before the caller hears of it.
_ATTEMPTS = 4
_BACKOFF_SECONDS = 0.05
_NAMES = {"#count": "count"}


class CountFull(Exception):
    def __init__(self, at_most: int) -> None:
        super().__init__(f"the tenant has {at_most} already")
        self.at_most = at_most


class TenantCount:
    def __init__(self, table: Table, key: Callable[[str], dict[str, Any]]) -> None:
        self._table = table
        self._key = key

    def current(self, tenant_id: str) -> int:
        item = self._table.get(self._key(tenant_id), consistent=True)
        return int(item["count"]["N"]) if item else 0

    def add_with(
        self,
        tenant_id: str,
        items: list[dict[str, Any]],
        *,
        at_most: int,
        still_wanted: Callable[[], bool] | None = None,
    ) -> None:
        """Write `items` and count one more, in one transaction.

        CountFull when the tenant already has `at_most`. A refusal for another reason is tried again while
        `still_wanted()` says the items' own conditions still hold; StaleWrite once it does not (or the
        count kept changing)."""
        count = ConditionalUpdate(
            key=self._key(tenant_id),
            update_expression="SET #count = if_not_exists(#count, :zero) + :one",
            condition_expression="attribute_not_exists(#count) OR #count < :most",
            names=_NAMES,
            values=serialize({":zero": 0, ":one": 1, ":most": at_most}),
        )
        self._transact(
            [*items, count.as_transact_item(self._table.name)], tenant_id, at_most=at_most, still_wanted=still_wanted
        )

    def remove_with(self, tenant_id: str, items: list[dict[str, Any]], *, still_wanted: Callable[[], bool]) -> None:
        """Write `items` and count one fewer, in one transaction; when it is refused, tried again only while
        `still_wanted()` says the items' own conditions still hold (StaleWrite otherwise)."""
        count = ConditionalUpdate(
            key=self._key(tenant_id),
            update_expression="SET #count = #count - :one",
            condition_expression="#count > :zero",
            names=_NAMES,
            values=serialize({":zero": 0, ":one": 1}),
        )
        self._transact([*items, count.as_transact_item(self._table.name)], tenant_id, still_wanted=still_wanted)

    def _transact(
        self,
        items: list[dict[str, Any]],
        tenant_id: str,
        *,
        at_most: int | None = None,
        still_wanted: Callable[[], bool] | None = None,
    ) -> None:
        for attempt in range(_ATTEMPTS):
            try:
                self._table.transact(items)
                return
            except StaleWrite:
                if at_most is not None and self.current(tenant_id) >= at_most:
                    raise CountFull(at_most) from None
                if still_wanted is not None and not still_wanted():
                    raise
                # Another create or delete of the tenant's changed the count at the same moment: again.
                time.sleep(_BACKOFF_SECONDS * (attempt + 1))
        raise StaleWrite("the tenant's count kept changing")
