"""The local gateway reads headers as API Gateway does: a header sent twice is one value, joined."""

from __future__ import annotations

from local.gateway import joined_headers


def test_a_header_sent_twice_is_joined_with_a_comma_so_two_tokens_make_one_that_fails():
    joined = joined_headers([("Authorization", "Bearer one"), ("authorization", "Bearer two"), ("Host", "x")])

    assert joined == {"authorization": "Bearer one,Bearer two", "host": "x"}


def test_cookies_sent_in_two_headers_are_joined_as_one_cookie_list():
    assert joined_headers([("Cookie", "a=1"), ("Cookie", "b=2")]) == {"cookie": "a=1;b=2"}
