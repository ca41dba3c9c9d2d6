"""Hostile ids in paths and hostile cursors in queries, on every route that takes one: each answers a 4xx
in the envelope (the resource is not found, or the value is refused), never a 500."""

from __future__ import annotations

import pytest

from support.events import claims_for, http_event

HOSTILE = ["../../etc/passwd", "..%2F..%2F", "nul\x00byte", "\u00f8\U0001f600", "A" * 10_000, " ", "%00", "'; DROP"]
ID_ROUTES = [
    ("GET", "/api/v1/reports/jobs/{}"),
    ("DELETE", "/api/v1/reports/jobs/{}"),
    ("GET", "/api/v1/reports/jobs/{}/download"),
    ("GET", "/api/v1/reports/jobs/{}/history"),
    ("GET", "/api/v1/report-reexports/{}"),
    ("DELETE", "/api/v1/report-reexports/{}"),
    ("GET", "/api/v1/reports/schedules/{}"),
    ("DELETE", "/api/v1/reports/schedules/{}"),
]
LISTS = ["/api/v1/reports/jobs", "/api/v1/report-reexports", "/api/v1/reports/schedules"]


def envelope_of(response):
    assert 400 <= response.status < 500, (response.status, response.body[:300])
    assert response.headers["content-type"] == "application/json"
    error = response.json["error"]
    assert error["code"] and error["traceId"]
    return error


@pytest.mark.reliability(
    scenario="Hostile ids in paths",
    injected="../, encoded ../, NUL, emoji, 10 KB, blank, SQL-ish ids on every route that takes an id",
    checked="a 4xx in the envelope, never a 500",
)
@pytest.mark.parametrize(("method", "template"), ID_ROUTES)
@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_id_is_a_4xx_in_the_envelope(api, aws, method, template, value):
    path = template.format(value)
    event = http_event(method, path, claims=claims_for("tenant-a", "[tenant_admin]", "user-1"))

    error = envelope_of(api.invoke(event))

    assert value not in error["message"] or len(value) < 3


@pytest.mark.reliability(
    scenario="Hostile list cursors",
    injected="../, NUL, emoji, 10 KB, blank, SQL-ish values as next_cursor on every list",
    checked="400 in the envelope (INVALID_CURSOR or VALIDATION_ERROR), never a 500",
)
@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_cursor_is_a_400_in_the_envelope(api, aws, path, value):
    response = api.call("GET", path, query={"next_cursor": value})

    error = envelope_of(response)
    assert response.status == 400
    assert error["code"] in ("INVALID_CURSOR", "VALIDATION_ERROR")
