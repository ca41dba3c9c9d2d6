"""A report's audit history in the table, and the chain that links its entries."""

from __future__ import annotations

from report_export.aws.dynamo import keys
from report_export.aws.dynamo.codecs import StoredHistoryEntry, history_event, serialize, stored_history_entry
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.updates import ConditionalUpdate, history_put
from report_export.core.history import HistoryEvent


class HistoryRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def put(self, tenant_id: str, event: HistoryEvent) -> None:
        self.table.client.put_item(**history_put(self.table.name, tenant_id, event)["Put"])

    def query(
        self, tenant_id: str, job_id: str, *, limit: int, after_event_id: str | None
    ) -> tuple[list[HistoryEvent], bool]:
        """A report's history, oldest first."""
        start_key = None
        if after_event_id:
            start_key = {"PK": keys.tenant_pk(tenant_id), "SK": keys.history_prefix(job_id) + after_event_id}
        found, more = self.table.read_page(self._of(tenant_id, job_id), start_key, limit=limit, filtered=False)
        return [history_event(item) for item in found], more

    def all_entries(self, tenant_id: str, job_id: str) -> list[StoredHistoryEntry]:
        """Every entry of the report's history with its place in the chain, oldest first (read consistently)."""
        items = self.table.read_all({**self._of(tenant_id, job_id), "ConsistentRead": True})
        return [stored_history_entry(item) for item in items]

    def chain_head(self, tenant_id: str, job_id: str) -> tuple[int, str | None]:
        """How many entries the chain holds, and the last one's hash (0 and None before the first)."""
        item = self.table.get(keys.history_chain_key(tenant_id, job_id), consistent=True)
        if item is None:
            return 0, None
        return int(item["sealed"]["N"]), item["head"]["S"]

    def seal(self, tenant_id: str, entry: HistoryEvent, *, seq: int, previous: str, link: str) -> bool:
        """Link one entry into the chain as entry `seq` (False when another sealer got there first)."""
        head_condition = "#sealed = :before" if seq > 1 else "attribute_not_exists(#sealed)"
        head = ConditionalUpdate(
            key=keys.history_chain_key(tenant_id, entry.job_id),
            update_expression="SET #sealed = :seq, head = :link",
            condition_expression=head_condition,
            names={"#sealed": "sealed"},
            values=serialize({":seq": seq, ":link": link, **({":before": seq - 1} if seq > 1 else {})}),
        )
        sealed = ConditionalUpdate(
            key=keys.history_entry_key(tenant_id, entry.job_id, entry.id),
            update_expression="SET chain_seq = :seq, chain_previous = :previous, chain_hash = :link "
            "REMOVE GSI3PK, GSI3SK",
            condition_expression="attribute_exists(PK) AND attribute_not_exists(chain_seq)",
            names={},
            values=serialize({":seq": seq, ":previous": previous, ":link": link}),
        )
        try:
            self.table.transact([head.as_transact_item(self.table.name), sealed.as_transact_item(self.table.name)])
        except StaleWrite:
            return False
        return True

    def unsealed(self, *, limit: int) -> list[tuple[str, str]]:
        """(tenant, report) of entries waiting to be sealed, oldest first, each report once."""
        response = self.table.client.query(
            TableName=self.table.name,
            IndexName=keys.UNFINISHED_INDEX,
            KeyConditionExpression="GSI3PK = :pk",
            ExpressionAttributeValues=serialize({":pk": keys.UNSEALED_PK}),
            Limit=limit,
        )
        reports: dict[tuple[str, str], None] = {}
        for item in response.get("Items", []):
            _, tenant_id, job_id, _ = item["GSI3SK"]["S"].rsplit("#", 3)
            reports[(tenant_id, job_id)] = None
        return list(reports)

    @staticmethod
    def _of(tenant_id: str, job_id: str) -> dict:
        return {
            "ScanIndexForward": True,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": serialize(
                {":pk": keys.tenant_pk(tenant_id), ":prefix": keys.history_prefix(job_id)}
            ),
        }
