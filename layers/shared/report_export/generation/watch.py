"""Pages fetched in a thread of their own, while the generator's thread looks for a cancel.

An upstream page can take many seconds (a slow service, retries with backoff, a read that stalls
until its timeout). The checkpoints after each page would see a cancel only once that page is in;
here the generator's thread waits for the next page in short steps and reads the job's
cancel_requested between them, so a cancel is seen within about a step whatever a page takes. The
fetching thread keeps at most one page ahead (so memory stays flat) and, once the generator stops
waiting, stops after the page it is on.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

Item = TypeVar("Item")

_END = object()


class JobCancelled(Exception):
    """A cancel was requested while the job ran."""


class CancelWatch:
    def __init__(self, cancel_requested: Callable[[], bool], *, step_seconds: float) -> None:
        self._cancel_requested = cancel_requested
        self._step = max(step_seconds, 0.05)

    def items(self, source: Iterator[Item]) -> Iterator[Item]:
        """What `source` yields, in order; JobCancelled when a cancel is seen while waiting for the next."""
        handed: queue.Queue[tuple[object, object]] = queue.Queue(maxsize=1)
        stop = threading.Event()

        def fetch() -> None:
            try:
                for item in source:
                    if not _hand(handed, (item, None), stop):
                        return
                _hand(handed, (_END, None), stop)
            except BaseException as error:  # noqa: BLE001 - raised again in the generator's thread
                _hand(handed, (_END, error), stop)
            finally:
                # A source that reads in threads of its own (slices) stops them now, not when collected.
                close = getattr(source, "close", None)
                if close is not None:
                    close()

        threading.Thread(target=fetch, name="upstream-pages", daemon=True).start()
        try:
            while True:
                try:
                    item, error = handed.get(timeout=self._step)
                except queue.Empty:
                    if self._cancel_requested():
                        raise JobCancelled() from None
                    continue
                if error is not None:
                    raise error
                if item is _END:
                    return
                yield item  # type: ignore[misc]
        finally:
            stop.set()


def _hand(handed: queue.Queue[tuple[object, object]], value: tuple[object, object], stop: threading.Event) -> bool:
    """Put the value for the generator's thread; False once it no longer waits for any."""
    while not stop.is_set():
        try:
            handed.put(value, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False
