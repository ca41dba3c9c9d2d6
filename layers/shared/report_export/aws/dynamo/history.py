"""A report's audit history in the table."""

from __future__ import annotations

from report_export.aws.dynamo import keys
from report_export.aws.dynamo.codecs import history_event, serialize
from report_export.aws.dynamo.table import Table
from report_export.aws.dynamo.updates import history_put
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
        query = {
            "ScanIndexForward": True,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
            "ExpressionAttributeValues": serialize(
                {":pk": keys.tenant_pk(tenant_id), ":prefix": keys.history_prefix(job_id)}
            ),
        }
        start_key = None
        if after_event_id:
            start_key = {"PK": keys.tenant_pk(tenant_id), "SK": keys.history_prefix(job_id) + after_event_id}
        found, more = self.table.read_page(query, start_key, limit=limit, filtered=False)
        return [history_event(item) for item in found], more
