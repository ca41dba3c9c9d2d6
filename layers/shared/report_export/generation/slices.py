"""Reading a report's period as slices side by side, handing on pages in the order of one sequential read.

An export is mostly waiting: one cursor fetches its pages one after the other, and at 50 ms a page it
cannot pass ~20k rows/s whatever the CPU does. A report type that declares slicing (its period splits
into days or weeks, see `Slicing`) is read here with up to `concurrency` slices in flight, each by its
own thread with its own cursor. Pages still come out strictly in order: every page of slice 0, then of
slice 1, and so on. The file is therefore byte for byte the one a sequential read writes, and its sha256
with it; the pipeline's order check still runs over the joined stream, so an upstream whose slices
overlap fails the job instead of writing a different file.

The slices ahead of the one being written must keep what they read until the writer reaches them, or
reading them early gains nothing: a slice is read at one cursor's pace once the writer is on it. Each
slice keeps a page or two in memory and, while the writer is short of pages, writes the rest to a spill
file of its own on local disk (Lambda's /tmp). Memory stays a small constant number of pages per slice,
whatever the report's size, and the disk holds at most `spill_budget` bytes: a slice that would go
beyond waits. At
most `concurrency` slices are open at once, started in order as earlier ones finish. A slice that fails
stops the read at once (the job fails with that slice's error); the consumer leaving early stops every
thread after the page it is on and deletes the spill files.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from typing import IO

import orjson

from report_export.core.models.jobs import Job
from report_export.generation.sources import Page, UpstreamClient
from report_export.reports.definition import ReportDefinition

_POLL_SECONDS = 0.2
_SPILL_WHILE_WAITED_SECONDS = 1.0
DEFAULT_SPILL_BUDGET = 400 * 1024 * 1024  # under Lambda's default 512 MB of /tmp


@dataclass(frozen=True, slots=True)
class ReadPosition:
    """Where the read of a report goes on: at `cursor` (None: its start) in slice `slice`; a report not read
    in slices is one slice. `rows_before` counts the rows of the slices before it, for progress."""

    sliced: bool
    slice: int = 0
    cursor: str | None = None
    rows_before: int = 0

    def after(self, page: Page, *, rows: int, slices: int) -> ReadPosition | None:
        """Where the read goes on once `page` is written (`rows` in the file with it); None at the end."""
        rows_before = self.rows_before if page.slice == self.slice else rows - len(page.records)
        if page.next_cursor is not None:
            return ReadPosition(self.sliced, page.slice, page.next_cursor, rows_before)
        if page.slice + 1 >= slices:
            return None
        return ReadPosition(self.sliced, page.slice + 1, None, rows)


def first_position(definition: ReportDefinition, job: Job, *, concurrency: int) -> ReadPosition:
    """A report type that allows slicing is read in slices when more than one may be read at once."""
    return ReadPosition(sliced=concurrency > 1 and len(definition.slices(job)) >= 2)


def slice_count(definition: ReportDefinition, job: Job, position: ReadPosition) -> int:
    return len(definition.slices(job)) if position.sliced else 1


def report_pages(
    upstream: UpstreamClient,
    definition: ReportDefinition,
    job: Job,
    *,
    concurrency: int,
    spill_budget: int = DEFAULT_SPILL_BUDGET,
    start: ReadPosition | None = None,
    rows: int = 0,
) -> Iterator[Page]:
    """The job's pages from `start` on (the beginning when None; `rows` already written before it)."""
    position = start or first_position(definition, job, concurrency=concurrency)
    if not position.sliced:
        if position.cursor is None:
            return upstream.pages(definition, job)
        return upstream.pages(definition, job, cursor=position.cursor)
    periods = definition.slices(job)
    first, cursor = position.slice, position.cursor

    def read(index: int, period: tuple[date, date]) -> Iterator[Page]:
        if index == first and cursor is not None:
            return upstream.pages(definition, job, period, cursor=cursor)
        return upstream.pages(definition, job, period)

    return sliced_pages(
        [
            lambda period=period, index=index: read(index, period)
            for index, period in enumerate(periods)
            if index >= first
        ],
        concurrency=max(concurrency, 1),
        spill_budget=spill_budget,
        first_index=first,
        rows_before=position.rows_before,
        rows_in_first=rows - position.rows_before,
    )


class _Stopped(Exception):
    """The consumer no longer reads."""


@dataclass
class _Slice:
    """One slice's pages read and not yet written, in reading order: each in memory or in the spill file."""

    in_memory: int = 0
    pending: deque[Page | tuple[int, int]] = field(default_factory=deque)  # a page, or (offset, size) spilled
    spill: IO[bytes] | None = None
    spill_end: int = 0
    done: bool = False


class _Reading:
    """What the slice threads and the consumer share, under one lock."""

    def __init__(self, count: int, *, pages_ahead: int, spill_budget: int) -> None:
        self.slices = [_Slice() for _ in range(count)]
        self.changed = threading.Condition()
        self.stopped = False
        self.failure: BaseException | None = None
        self.spilled = 0  # bytes in spill files not yet read back
        self.writer_waited_at = float("-inf")
        self._pages_ahead = pages_ahead
        self._spill_budget = spill_budget

    def add(self, index: int, page: Page, *, writing: Callable[[], int]) -> None:
        """Keep a page the slice's thread read: in memory while there is room, else in its spill file.

        The slice being written keeps `pages_ahead` pages in memory, the others one. Beyond that a slice
        ahead spills, but only while the writer is short of pages (it waited for one within the last
        `_SPILL_WHILE_WAITED_SECONDS`): when the CPU is what limits the export, reading ahead gains
        nothing and the spill would only cost CPU. A spill that would pass the budget waits.
        """
        state = self.slices[index]
        blob: bytes | None = None
        with self.changed:
            while True:
                if self.stopped:
                    raise _Stopped()
                ahead = writing() != index
                if state.in_memory < (1 if ahead else self._pages_ahead):
                    state.in_memory += 1
                    state.pending.append(page)
                    self.changed.notify_all()
                    return
                if ahead and time.monotonic() - self.writer_waited_at < _SPILL_WHILE_WAITED_SECONDS:
                    if blob is None:
                        self.changed.release()  # serialised outside the lock: the writer need not wait for it
                        try:
                            blob = orjson.dumps([page.records, page.next_cursor, page.total, page.watermark])
                        finally:
                            self.changed.acquire()
                        continue
                    if self.spilled + len(blob) <= self._spill_budget:
                        self._spill(state, blob)
                        return
                self.changed.wait(_POLL_SECONDS)

    def _spill(self, state: _Slice, blob: bytes) -> None:
        if state.spill is None:
            state.spill = tempfile.TemporaryFile(prefix="report-slice-")
        state.spill.seek(state.spill_end)
        state.spill.write(blob)
        state.pending.append((state.spill_end, len(blob)))
        state.spill_end += len(blob)
        self.spilled += len(blob)
        self.changed.notify_all()

    def finish(self, index: int, error: BaseException | None) -> None:
        with self.changed:
            self.slices[index].done = True
            if error is not None and self.failure is None:
                self.failure = error
            self.changed.notify_all()

    def take(self, index: int) -> Page | None:
        """The slice's next page (None at its end); raises the first failure of any slice."""
        state = self.slices[index]
        with self.changed:
            while True:
                if self.failure is not None:
                    raise self.failure
                if state.pending:
                    item = state.pending.popleft()
                    break
                if state.done:
                    return None
                self.writer_waited_at = time.monotonic()
                self.changed.notify_all()  # slices ahead may spill now
                self.changed.wait(_POLL_SECONDS)
            if isinstance(item, Page):
                state.in_memory -= 1
                self.changed.notify_all()
                return item
            offset, size = item
            assert state.spill is not None
            state.spill.seek(offset)
            blob = state.spill.read(size)
            self.spilled -= size
            self.changed.notify_all()
        records, next_cursor, total, watermark = orjson.loads(blob)
        return Page(records=records, next_cursor=next_cursor, total=total, watermark=watermark)

    def close(self, index: int) -> None:
        with self.changed:
            spill = self.slices[index].spill
            self.slices[index].spill = None
        if spill is not None:
            spill.close()

    def stop(self) -> None:
        with self.changed:
            self.stopped = True
            self.changed.notify_all()
        for index in range(len(self.slices)):
            self.close(index)


def sliced_pages(
    slices: Sequence[Callable[[], Iterator[Page]]],
    *,
    concurrency: int,
    pages_ahead: int = 2,
    spill_budget: int = DEFAULT_SPILL_BUDGET,
    first_index: int = 0,
    rows_before: int = 0,
    rows_in_first: int = 0,
) -> Iterator[Page]:
    """Every page of every slice, slice after slice, read up to `concurrency` slices at once.

    Each page handed on carries `total` as an estimate for the whole report (see `_ReportTotal`), so
    progress covers the report rather than the slice being written, and its slice's number, counted
    from `first_index` (a read that goes on where another stopped: `rows_before` rows were written in
    the slices before it, `rows_in_first` in the first one's pages before its cursor).
    """
    reading = _Reading(len(slices), pages_ahead=pages_ahead, spill_budget=spill_budget)
    totals = _ReportTotal(len(slices), rows_before=rows_before)
    writing = [0]

    def read(index: int) -> None:
        try:
            for page in slices[index]():
                reading.add(index, page, writing=lambda: writing[0])
        except _Stopped:
            return
        except BaseException as error:  # noqa: BLE001 - raised again in the consumer's thread
            reading.finish(index, error)
            return
        reading.finish(index, None)

    executor = ThreadPoolExecutor(max_workers=min(concurrency, len(slices)), thread_name_prefix="upstream-slice")
    try:
        # Submitted in order, so slices start in order: the one being written is always among those running.
        for index in range(len(slices)):
            executor.submit(read, index)
        for index in range(len(slices)):
            with reading.changed:
                writing[0] = index
                reading.changed.notify_all()
            written = rows_in_first if index == 0 else 0
            while (page := reading.take(index)) is not None:
                written += len(page.records)
                totals.seen(index, page.total)
                yield replace(page, total=totals.estimate(), slice=first_index + index)
            totals.finished(index, written)
            reading.close(index)
    finally:
        reading.stop()
        executor.shutdown(wait=False, cancel_futures=True)


class _ReportTotal:
    """The whole report's record count as far as it is known, for progress.

    A slice's first page says how many records the slice has (when the upstream gives totals); a
    finished slice counts what it had. Slices not yet heard of are assumed to be like the average of
    those that have, so the estimate is exact once every slice has reported and never below what has
    been written. None while no slice has given a figure: progress then falls back to its page-count
    estimate, which never claims to be done.
    """

    def __init__(self, count: int, *, rows_before: int = 0) -> None:
        self._known: list[int | None] = [None] * count
        self._rows_before = rows_before  # of slices read before these (another invocation's)

    def seen(self, index: int, total: int | None) -> None:
        if total is not None and self._known[index] is None:
            self._known[index] = total

    def finished(self, index: int, written: int) -> None:
        self._known[index] = written

    def estimate(self) -> int | None:
        known = [total for total in self._known if total is not None]
        if not known:
            return None
        unknown = len(self._known) - len(known)
        return self._rows_before + sum(known) + round(unknown * sum(known) / len(known))
