"""The local gateway reads headers as API Gateway does: a header sent twice is one value, joined."""

from __future__ import annotations

import pytest

from local.gateway import Gateway, Route, joined_headers
from local.runtime import FunctionError


def test_a_header_sent_twice_is_joined_with_a_comma_so_two_tokens_make_one_that_fails():
    joined = joined_headers([("Authorization", "Bearer one"), ("authorization", "Bearer two"), ("Host", "x")])

    assert joined == {"authorization": "Bearer one,Bearer two", "host": "x"}


def test_cookies_sent_in_two_headers_are_joined_as_one_cookie_list():
    assert joined_headers([("Cookie", "a=1"), ("Cookie", "b=2")]) == {"cookie": "a=1;b=2"}


class _Function:
    """A function of the local runtime that answers or fails as a Lambda invocation does."""

    def __init__(self, fails: bool) -> None:
        self.fails, self.events = fails, []

    def invoke(self, event):
        self.events.append(event)
        if self.fails:
            raise FunctionError("Runtime.ExitError", "the process died")
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


@pytest.mark.parametrize("fails", [False, True], ids=["answered", "failed"])
def test_a_routed_request_is_answered_with_the_request_id_its_function_saw_once(fails):
    function = _Function(fails)
    gateway = Gateway("127.0.0.1", 0, log=lambda line: None)
    gateway._routes, gateway._functions = [Route("Api", "GET", "/x", "Fn", None)], {"Fn": function}
    try:
        status, headers, _ = gateway.handle("GET", "/x", [("Host", "127.0.0.1")], b"", "127.0.0.1")
    finally:
        gateway.stop()

    [event] = function.events
    assert status == (500 if fails else 200)
    assert [value for name, value in headers if name == "apigw-requestid"] == [event["requestContext"]["requestId"]]


def test_the_gateways_own_answers_carry_a_request_id_of_their_own():
    gateway = Gateway("127.0.0.1", 0, log=lambda line: None)
    try:
        first = gateway.handle("GET", "/nowhere", [], b"", "127.0.0.1")
        second = gateway.handle("GET", "/nowhere", [], b"", "127.0.0.1")
    finally:
        gateway.stop()

    ids = [value for reply in (first, second) for name, value in reply[1] if name == "apigw-requestid"]
    assert first[0] == 404 and len(ids) == 2 and ids[0] != ids[1]
