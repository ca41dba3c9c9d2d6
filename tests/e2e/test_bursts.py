"""The local gateway as API Gateway behaves: a burst of clients at once is taken (none is reset), and a
method it does not serve is answered in JSON."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .running_stack import RunningStack


@pytest.mark.reliability(
    scenario="100 clients connecting at once",
    injected="100 new connections released together against the local gateway",
    checked="every one answered 200, none reset",
)
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


def test_a_method_the_gateway_does_not_serve_is_405_in_the_envelope(stack: RunningStack):
    for method in ("TRACE", "CONNECT", "PROPFIND", "BREW"):
        response = requests.request(method, f"{stack.api}/api/health", timeout=10)

        assert response.status_code == 405, (method, response.text)
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert response.json()["error"]["traceId"] == response.headers["apigw-requestid"]
