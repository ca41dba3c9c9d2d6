"""Legal holds on job items: the hold itself, and the record's own expiry (its TTL) set aside while held."""

from __future__ import annotations

from report_export.aws.dynamo import keys
from report_export.aws.dynamo.codecs import serialize
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.updates import ConditionalUpdate, history_put
from report_export.core.history import HistoryEvent
from report_export.core.models.jobs import LegalHold


def _placed(tenant_id: str, job_id: str, hold: LegalHold, retention_ttl: int) -> ConditionalUpdate:
    # The TTL is kept aside so that DynamoDB does not remove the record of a held file; `retention_ttl`
    # stands in for a record that had none.
    return ConditionalUpdate(
        key=keys.job_key(tenant_id, job_id),
        update_expression="SET legal_hold = :hold, held_ttl = if_not_exists(#ttl, :ttl) REMOVE #ttl",
        condition_expression="attribute_exists(PK) AND attribute_not_exists(legal_hold)",
        names={"#ttl": "ttl"},
        values=serialize({":hold": hold.model_dump(mode="json"), ":ttl": retention_ttl}),
    )


def _lifted(tenant_id: str, job_id: str, report_id: str) -> ConditionalUpdate:
    return ConditionalUpdate(
        key=keys.job_key(tenant_id, job_id),
        update_expression="SET #ttl = held_ttl REMOVE legal_hold, held_ttl",
        condition_expression="legal_hold.report_id = :report AND attribute_exists(held_ttl)",
        names={"#ttl": "ttl"},
        values=serialize({":report": report_id}),
    )


class LegalHoldRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def place(self, tenant_id: str, hold: LegalHold, recorded: HistoryEvent, *, retention_ttl: int) -> bool:
        """Mark the report held and record who held it, in one transaction (False when it is held already)."""
        placed = _placed(tenant_id, hold.report_id, hold, retention_ttl)
        return self._transact(placed, history_put(self.table.name, tenant_id, recorded))

    def lift(self, tenant_id: str, report_id: str, recorded: HistoryEvent) -> bool:
        """Unmark the report and record who lifted the hold, in one transaction (False when it is not held)."""
        lifted = _lifted(tenant_id, report_id, report_id)
        return self._transact(lifted, history_put(self.table.name, tenant_id, recorded))

    def cover(self, tenant_id: str, job_id: str, hold: LegalHold, *, retention_ttl: int) -> bool:
        """Mark a job of the report's lineage held through it (False when it is held already)."""
        try:
            self.table.update(_placed(tenant_id, job_id, hold, retention_ttl))
        except StaleWrite:
            return False
        return True

    def uncover(self, tenant_id: str, job_id: str, *, report_id: str) -> None:
        """Unmark a job held through `report_id`; one held otherwise (or not at all) stays as it is."""
        try:
            self.table.update(_lifted(tenant_id, job_id, report_id))
        except StaleWrite:
            pass

    def _transact(self, change: ConditionalUpdate, history: dict) -> bool:
        try:
            self.table.transact([change.as_transact_item(self.table.name), history])
        except StaleWrite:
            return False
        return True
