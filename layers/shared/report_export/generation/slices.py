"""Reading a report's period as slices side by side, handing on pages in the order of one sequential read.

An export is mostly waiting: one cursor fetches its pages one after the other, and at 50 ms a page it
cannot pass ~20k rows/s whatever the CPU does. A report type that declares slicing (its period splits
into days or weeks, see `Slicing`) is read here with up to `concurrency` slices in flight, each by its
own thread with its own cursor. Pages still come out strictly in order: every page of slice 0, then of
slice 1, and so on. The file is therefore byte for byte the one a sequential read writes, and its sha256
with it; the pipeline's order check still runs over the joined stream, so an upstream whose slices
overlap fails the job instead of writing a different file.

Memory stays bounded: each slice holds at most `pages_ahead` decoded pages, and slices start in order as
earlier ones finish, so at most `concurrency` slices are open at once. A slice that fails stops the read
at once (the job fails with that slice's error), and the consumer leaving early stops every thread
after the page it is on.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from report_export.core.models.jobs import Job
from report_export.generation.sources import Page, UpstreamClient
from report_export.reports.definition import ReportDefinition

_END = object()
_POLL_SECONDS = 0.2


def report_pages(
    upstream: UpstreamClient, definition: ReportDefinition, job: Job, *, concurrency: int
) -> Iterator[Page]:
    """The job's pages: sliced when the report type allows and more than one slice may be read at once."""
    periods = definition.slices(job) if concurrency > 1 else []
    if len(periods) < 2:
        return upstream.pages(definition, job)
    return sliced_pages(
        [lambda period=period: upstream.pages(definition, job, period) for period in periods],
        concurrency=concurrency,
    )


def sliced_pages(
    slices: Sequence[Callable[[], Iterator[Page]]], *, concurrency: int, pages_ahead: int = 2
) -> Iterator[Page]:
    """Every page of every slice, slice after slice, read up to `concurrency` slices at once.

    Each page handed on carries `total` as an estimate for the whole report (see `_ReportTotal`), so
    progress covers the report rather than the slice being written.
    """
    handed: list[queue.Queue[tuple[object, BaseException | None]]] = [queue.Queue(maxsize=pages_ahead) for _ in slices]
    stop = threading.Event()
    failed = threading.Event()
    totals = _ReportTotal(len(slices))

    def read(index: int) -> None:
        try:
            for page in slices[index]():
                if not _hand(handed[index], (page, None), stop):
                    return
            _hand(handed[index], (_END, None), stop)
        except BaseException as error:  # noqa: BLE001 - raised again in the consumer's thread
            failed.set()
            _hand(handed[index], (_END, error), stop)

    executor = ThreadPoolExecutor(max_workers=min(concurrency, len(slices)), thread_name_prefix="upstream-slice")
    try:
        # Submitted in order, so slices start in order: the one being written is always among those running.
        for index in range(len(slices)):
            executor.submit(read, index)
        for index, pages in enumerate(handed):
            written = 0
            while True:
                item, error = _next(pages, handed, failed)
                if error is not None:
                    raise error
                if item is _END:
                    totals.finished(index, written)
                    break
                page: Page = item  # type: ignore[assignment]
                written += len(page.records)
                totals.seen(index, page.total)
                yield replace(page, total=totals.estimate())
    finally:
        stop.set()
        executor.shutdown(wait=False, cancel_futures=True)


def _next(
    pages: queue.Queue[tuple[object, BaseException | None]],
    every_slice: list[queue.Queue[tuple[object, BaseException | None]]],
    failed: threading.Event,
) -> tuple[object, BaseException | None]:
    """The next item of the slice being written, or the failure of any slice as soon as one fails."""
    while True:
        try:
            return pages.get(timeout=_POLL_SECONDS)
        except queue.Empty:
            if not failed.is_set():
                continue
        for other in every_slice:
            # The failed slice's error is its last item; pages before it in its queue are of no use now.
            while True:
                try:
                    item, error = other.get_nowait()
                except queue.Empty:
                    break
                if error is not None:
                    return item, error


def _hand(
    pages: queue.Queue[tuple[object, BaseException | None]],
    value: tuple[object, BaseException | None],
    stop: threading.Event,
) -> bool:
    """Put the value for the consumer; False once it no longer reads."""
    while not stop.is_set():
        try:
            pages.put(value, timeout=_POLL_SECONDS)
            return True
        except queue.Full:
            continue
    return False


class _ReportTotal:
    """The whole report's record count as far as it is known, for progress.

    A slice's first page says how many records the slice has (when the upstream gives totals); a
    finished slice counts what it had. Slices not yet heard of are assumed to be like the average of
    those that have, so the estimate is exact once every slice has reported and never below what has
    been written. None while no slice has given a figure: progress then falls back to its page-count
    estimate, which never claims to be done.
    """

    def __init__(self, count: int) -> None:
        self._known: list[int | None] = [None] * count

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
        return sum(known) + round(unknown * sum(known) / len(known))
