"""Re-export records in the table."""

from __future__ import annotations

from typing import Any

from report_export.aws.dynamo import keys
from report_export.aws.dynamo.codecs import (
    ANNOUNCEMENT_CLAIM,
    StoredReexport,
    reexport_item,
    serialize,
    stored_reexport,
)
from report_export.aws.dynamo.table import StaleWrite, Table
from report_export.aws.dynamo.updates import (
    ConditionalUpdate,
    claim_original_update,
    history_put,
    put_new,
    reexport_update,
    release_original_update,
)
from report_export.core.history import HistoryEvent
from report_export.core.models.reexports import Reexport, ReexportStatus


class ReexportRepository:
    def __init__(self, table: Table) -> None:
        self.table = table

    def create(
        self,
        record: Reexport,
        *,
        original_manifest: dict[str, Any] | None,
        requested: HistoryEvent,
        job_items: list[dict[str, Any]],
    ) -> None:
        """One transaction: the original report claimed for this re-export (only if it succeeded and
        has none active), the record, the job that regenerates the report, the history entries.

        Raises StaleWrite when the transaction is cancelled: the caller reads the original to learn why.
        """
        self.table.transact(
            [
                claim_original_update(record.tenant_id, record.report_id, record.id).as_transact_item(self.table.name),
                put_new(self.table.name, reexport_item(record, original_manifest=original_manifest)),
                *job_items,
                history_put(self.table.name, record.tenant_id, requested),
            ]
        )

    def get(self, tenant_id: str, reexport_id: str, *, consistent: bool = False) -> StoredReexport | None:
        item = self.table.get(keys.reexport_key(tenant_id, reexport_id), consistent=consistent)
        return stored_reexport(item) if item else None

    def apply(self, update: ConditionalUpdate) -> StoredReexport:
        """One conditional update of a record (StaleWrite when its condition fails)."""
        return stored_reexport(self.table.update(update))

    def mark_running(self, tenant_id: str, reexport_id: str, *, now: str) -> bool:
        """pending → running once the generator has claimed the job; False when it was not pending."""
        try:
            self.apply(
                reexport_update(
                    tenant_id,
                    reexport_id,
                    {"status": ReexportStatus.RUNNING, "updated_at": now},
                    condition="#status = :pending",
                    condition_names={"#status": "status"},
                    condition_values={":pending": ReexportStatus.PENDING.value},
                )
            )
        except StaleWrite:
            return False
        return True

    def note_cancel_requested(self, tenant_id: str, reexport_id: str, *, now: str) -> None:
        """The record says cancel_requested while its running job is asked to stop (no-op once it ended,
        or when it already says so)."""
        try:
            self.apply(
                reexport_update(
                    tenant_id,
                    reexport_id,
                    {"cancel_requested": True, "updated_at": now},
                    condition="#status IN (:pending, :running) AND (attribute_not_exists(#asked) OR #asked = :no)",
                    condition_names={"#status": "status", "#asked": "cancel_requested"},
                    condition_values={
                        ":pending": ReexportStatus.PENDING.value,
                        ":running": ReexportStatus.RUNNING.value,
                        ":no": False,
                    },
                )
            )
        except StaleWrite:
            pass

    def release_original(self, tenant_id: str, report_id: str, reexport_id: str) -> None:
        """The original names a re-export that has ended: it may be re-exported again (no-op otherwise)."""
        try:
            self.table.update(release_original_update(tenant_id, report_id, reexport_id))
        except StaleWrite:
            pass

    def claim_announcement(
        self, tenant_id: str, reexport_id: str, *, expected_version: int, marker: str, stale_before: str
    ) -> None:
        """Take the right to announce a finished re-export: only at the version read, not yet announced, and
        not being announced by another request (a claim older than stale_before was abandoned). The version
        is not bumped: the claim is internal, and released if the announcement fails. StaleWrite otherwise."""
        self.table.update(
            reexport_update(
                tenant_id,
                reexport_id,
                {ANNOUNCEMENT_CLAIM: marker},
                condition=(
                    "#version = :expected_version AND attribute_not_exists(#sent) AND #status IN (:succeeded, :failed)"
                    " AND (attribute_not_exists(#claim) OR #claim < :stale_before)"
                ),
                condition_names={
                    "#claim": ANNOUNCEMENT_CLAIM,
                    "#version": "version",
                    "#sent": "notification_sent_at",
                    "#status": "status",
                },
                condition_values={
                    ":expected_version": expected_version,
                    ":succeeded": ReexportStatus.SUCCEEDED.value,
                    ":failed": ReexportStatus.FAILED.value,
                    ":stale_before": stale_before,
                },
                bump_version=False,
            )
        )

    def mark_announced(
        self, tenant_id: str, reexport_id: str, *, expected_version: int, marker: str, now: str
    ) -> StoredReexport:
        """notification_sent_at, for the request holding the claim at the version it read; the claim goes."""
        return self.apply(
            reexport_update(
                tenant_id,
                reexport_id,
                {"notification_sent_at": now, "updated_at": now},
                condition="#version = :expected_version AND #claim = :marker",
                condition_names={"#version": "version", "#claim": ANNOUNCEMENT_CLAIM},
                condition_values={":expected_version": expected_version, ":marker": marker},
                remove=(ANNOUNCEMENT_CLAIM,),
            )
        )

    def release_announcement(self, tenant_id: str, reexport_id: str, *, marker: str) -> None:
        """Give the claim back (the announcement failed), so that a retry can take it; no-op if it is not ours."""
        try:
            self.table.update(
                reexport_update(
                    tenant_id,
                    reexport_id,
                    {},
                    condition="#claim = :marker",
                    condition_names={"#claim": ANNOUNCEMENT_CLAIM},
                    condition_values={":marker": marker},
                    remove=(ANNOUNCEMENT_CLAIM,),
                    bump_version=False,
                )
            )
        except StaleWrite:
            pass

    def query(
        self,
        tenant_id: str,
        *,
        status: ReexportStatus | None,
        report_id: str | None,
        limit: int,
        after_reexport_id: str | None,
    ) -> tuple[list[StoredReexport], bool]:
        """Newest first, like jobs: a report's re-exports from the ByType index (status filtered,
        a report has few), a status from the ByStatus index, else the tenant's REEXPORT# items."""
        pk = keys.tenant_pk(tenant_id)
        query: dict[str, Any] = {"ScanIndexForward": False}
        filter_values: dict[str, Any] = {}
        start_key: dict[str, Any] = {}
        if report_id is not None:
            query["IndexName"] = keys.BY_TYPE_INDEX
            query["KeyConditionExpression"] = "GSI2PK = :pk"
            key_values: dict[str, Any] = {":pk": keys.reexports_of_pk(tenant_id, report_id)}
            index_key = {"GSI2PK": key_values[":pk"]}
            if status is not None:
                query["FilterExpression"] = "#status = :status"
                query["ExpressionAttributeNames"] = {"#status": "status"}
                filter_values = {":status": status.value}
            sort_name = "GSI2SK"
        elif status is not None:
            query["IndexName"] = keys.BY_STATUS_INDEX
            query["KeyConditionExpression"] = "GSI1PK = :pk"
            key_values = {":pk": keys.reexport_status_pk(tenant_id, status)}
            index_key = {"GSI1PK": key_values[":pk"]}
            sort_name = "GSI1SK"
        else:
            query["KeyConditionExpression"] = "PK = :pk AND begins_with(SK, :prefix)"
            key_values = {":pk": pk, ":prefix": "REEXPORT#"}
            index_key = {}
            sort_name = "SK"
        if after_reexport_id:
            start_key = {
                **index_key,
                sort_name: keys.reexport_sk(after_reexport_id),
                "PK": pk,
                "SK": keys.reexport_sk(after_reexport_id),
            }
        query["ExpressionAttributeValues"] = serialize({**key_values, **filter_values})
        found, more = self.table.read_page(query, start_key or None, limit=limit, filtered=bool(filter_values))
        return [stored_reexport(item) for item in found], more
