"""Progress while a job runs, written at a bounded rate; each write extends the lease and looks for a cancel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from report_export.aws.dynamo.codecs import StoredJob

# Without an upstream total, progress is an estimate from pages read; it never claims to be done.
_ESTIMATE_CAP_PCT = 95
FINISHING_PCT = 99


class LostClaim(Exception):
    """Another attempt owns the job now (or it changed underneath us); this one stops quietly."""


class Progress:
    def __init__(
        self,
        claimed: StoredJob,
        checkpoint: Callable[[StoredJob, dict[str, Any]], StoredJob],
        *,
        interval_seconds: float,
        clock: Callable[[], float],
        pages: int = 0,
        percent: int = 0,
    ) -> None:
        self._claimed = claimed
        self._checkpoint = checkpoint
        self._interval = interval_seconds
        self._clock = clock
        # A file an earlier invocation began: its pages count, and the percent it reached stays the floor.
        self._pages = pages
        self._percent = percent
        self._last_write = clock()

    def page_done(self, rows: int, total: int | None) -> None:
        self._pages += 1
        if self._clock() - self._last_write < self._interval:
            return
        if total:
            percent = min(FINISHING_PCT - 1, rows * 100 // total)
        else:
            percent = min(_ESTIMATE_CAP_PCT, round(100 * (1 - 0.9**self._pages)))
        # A total that is itself an estimate (a report read in slices) may grow: progress never goes back.
        self._percent = max(self._percent, percent)
        self._write({"progress_pct": self._percent, "rows_written": rows, "phase": "fetching"})

    @property
    def current(self) -> StoredJob:
        """The job as the last progress write left it."""
        return self._claimed

    @property
    def percent(self) -> int:
        return self._percent

    @property
    def pages(self) -> int:
        return self._pages

    def finishing(self, rows: int) -> None:
        self._write({"progress_pct": FINISHING_PCT, "rows_written": rows, "phase": "storing"})

    def _write(self, changes: dict[str, Any]) -> None:
        self._claimed = self._checkpoint(self._claimed, changes)
        self._last_write = self._clock()
