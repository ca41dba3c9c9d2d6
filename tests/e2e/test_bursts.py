"""A burst of clients at once against the local stack, as API Gateway would take them: none is reset."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests

from .running_stack import RunningStack


def test_a_hundred_clients_connecting_at_once_are_all_answered(stack: RunningStack):
    clients = 100
    start = threading.Barrier(clients)

    def health(_: int) -> int:
        start.wait(timeout=30)
        # A fresh connection each: the backlog is what a burst of new clients meets.
        with requests.Session() as session:
            return session.get(f"{stack.api}/api/health", timeout=60).status_code

    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(health, range(clients)))

    assert statuses == [200] * clients
