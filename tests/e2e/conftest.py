"""One local stack per test session (and xdist worker), started as ./dev run starts it, on free ports.

End-to-end tests talk to it only over HTTP, as a client would: the API, the presigned and signed
file URLs, the sample upstream's knobs. They never import the handlers: the stack's functions run
in processes of their own, from template.yaml. The stack is stopped with SIGINT, as Ctrl-C
stops it, and must exit cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .running_stack import RunningStack, start_stack, stop_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # Two deliveries before the dead-letter queue (the template's default is five), so the poison
    # message test is short.
    running = start_stack(tmp_path_factory.mktemp("stack"), "--param", "MaxReceiveCount=2")
    yield running
    status = stop_stack(running)
    assert status == 0, running.log_tail()
    assert "Stopped." in running.log_tail(5)


@pytest.fixture
def knobs(stack: RunningStack) -> Iterator[RunningStack]:
    """The stack, with the upstream's knobs put back after the test."""
    yield stack
    stack.reset_knobs()
