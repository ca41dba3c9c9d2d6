"""A report's audit history: who created it, who was given a download URL, who re-exported it and
with what result. Entries are written in the same transaction as the change they record, where
there is one (job creation, re-export requested, cancelled, completed)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field
from uuid6 import uuid7

from report_export.core.models.common import ServiceModel, Timestamp, canonical_json, now_utc


class HistoryEventType(StrEnum):
    CREATED = "created"
    DOWNLOAD_URL_ISSUED = "download_url_issued"
    REEXPORT_REQUESTED = "reexport_requested"
    REEXPORT_CANCELLED = "reexport_cancelled"
    REEXPORT_COMPLETED = "reexport_completed"
    LEGAL_HOLD_PLACED = "legal_hold_placed"
    LEGAL_HOLD_LIFTED = "legal_hold_lifted"


class HistoryEvent(ServiceModel):
    """One entry of a report's audit history."""

    id: str = Field(description="A UUIDv7: entries sort by it")
    job_id: str
    event: HistoryEventType
    actor: str = Field(description="Who: a token's sub, signed-link, or the service")
    at: Timestamp
    details: dict[str, Any] = Field(default_factory=dict)


class ChainCheck(ServiceModel):
    """Whether the report's history is as it was written: each entry carries the hash of the one before it."""

    intact: bool = Field(description="No sealed entry was edited, removed or reordered")
    sealed: int = Field(description="Entries in the chain")
    unsealed: int = Field(0, description="Entries written since the chain was last extended (none once read)")
    head: str | None = Field(None, description="The hash of the last sealed entry: note it to compare later")
    first_broken: str | None = Field(None, description="The first entry whose link does not hold")
    problem: str | None = None


class HistoryPage(ServiceModel):
    items: list[HistoryEvent]
    next_cursor: str | None = Field(None, description="Pass back as the next_cursor query parameter; null at the end.")
    chain: ChainCheck | None = Field(None, description="The whole history checked, on every page")


# The link before a report's first entry.
GENESIS = "0" * 64


def chain_link(previous: str, event: HistoryEvent) -> str:
    """An entry's hash: of the hash before it and of the entry exactly as the API shows it."""
    content = canonical_json(event.model_dump(mode="json"))
    return hashlib.sha256(f"{previous}\n{content}".encode()).hexdigest()


# The actor of entries the service writes on its own behalf (a cancel noticed by the generator).
SERVICE_ACTOR = "report-export"


def new_event(
    job_id: str,
    event: HistoryEventType,
    *,
    actor: str,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> HistoryEvent:
    """A history entry with a UUIDv7 id, so a report's entries sort by time."""
    return HistoryEvent(
        id=str(uuid7()),
        job_id=job_id,
        event=event,
        actor=actor,
        at=at or now_utc(),
        details={name: value for name, value in (details or {}).items() if value is not None},
    )
