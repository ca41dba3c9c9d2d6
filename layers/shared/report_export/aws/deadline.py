"""The invocation's deadline, kept by every AWS call: no request is sent that could not be answered
before the function's time runs out.

A Lambda stopped by its timeout in the middle of a request leaves its caller with a 500 and its work
half done (a job written, its wake-up never sent). Each attempt of a boto3 call lasts at most its
connect and read timeouts, so an attempt is sent only while that much time and a margin are left;
otherwise the call fails at once with DeadlineReached, a BotoCoreError like any AWS failure, and the
caller's own failure handling (a 503 before anything is written, or the sweeper's re-send after) takes
over while the function can still answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError

# What is kept back after the last attempt: the function still answers, logs and flushes its metrics.
_MARGIN_SECONDS = 1.0


class DeadlineReached(BotoCoreError):
    fmt = "Not sent: the invocation has too little time left for an answer ({seconds_left:.1f} s)"


class InvocationDeadline:
    def __init__(self) -> None:
        self._ends_at: float | None = None

    @contextmanager
    def of(self, context: Any) -> Iterator[None]:
        """Within the invocation of this Lambda context (no deadline when it cannot tell its time)."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        self._ends_at = time.monotonic() + remaining() / 1000 if callable(remaining) else None
        try:
            yield
        finally:
            self._ends_at = None

    def seconds_left(self) -> float | None:
        return None if self._ends_at is None else self._ends_at - time.monotonic()

    def guard(self, client: Any) -> Any:
        """The client, refusing each attempt that could outlast the invocation."""
        attempt_seconds = client.meta.config.connect_timeout + client.meta.config.read_timeout

        def refuse_when_late(**_: Any) -> None:
            left = self.seconds_left()
            if left is not None and left < attempt_seconds + _MARGIN_SECONDS:
                raise DeadlineReached(seconds_left=left)

        # First of the before-send handlers: nothing else (an emulator, a stub) sees a request that is not sent.
        client.meta.events.register_first("before-send", refuse_when_late)
        return client


deadline = InvocationDeadline()
