"""A report's audit history: who created it, who was given a download URL, who re-exported it and
with what result. Entries are written in the same transaction as the change they record, where
there is one (job creation, re-export requested, cancelled, completed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from uuid6 import uuid7

from report_export.models import HistoryEvent, HistoryEventType, now_utc

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
