"""Bodies a hostile or careless client sends, on every route that takes one: each answers its 4xx with the
error envelope, never a 500, never echoes the body, and writes nothing."""

from __future__ import annotations

import base64
import json

import pytest

from support.events import claims_for, http_event

JOBS = "/api/v1/reports/jobs"
SCHEDULES = "/api/v1/reports/schedules"
REEXPORTS = "/api/v1/report-reexports"
# Any id will do: a body is refused before the route looks for what it names.
SOME_ID = "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f"
MARKER = "zz-hostile-marker-zz"

ROUTES = [
    ("POST", JOBS),
    ("POST", SCHEDULES),
    ("PUT", f"{SCHEDULES}/{SOME_ID}"),
    ("POST", REEXPORTS),
    ("PUT", f"{REEXPORTS}/{SOME_ID}"),
]


def send(api, method, path, raw, *, content_type="application/json", encoded=False, roles="[tenant_admin]"):
    event = http_event(method, path, claims=claims_for("tenant-a", roles, "user-1"))
    if content_type is None:
        event["headers"].pop("content-type", None)
    else:
        event["headers"]["content-type"] = content_type
    if encoded:
        event["body"] = base64.b64encode(raw).decode()
        event["isBase64Encoded"] = True
    else:
        event["body"] = raw
    return api.invoke(event)


def nothing_written(aws):
    return aws.dynamodb.scan(TableName=aws.table_name)["Items"] == []


def assert_refused(response, status, code):
    assert response.status == status, response.body
    assert response.headers["content-type"] == "application/json"
    assert response.json["error"]["code"] == code
    assert response.json["error"]["traceId"]
    assert MARKER not in response.body


@pytest.mark.reliability(
    scenario="Bodies of other media types",
    injected="text/plain, XML, octet-stream, multipart, form, UTF-16 charset, none; on every route with a body",
    checked="415 in the envelope, body not echoed, nothing written",
)
@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/octet-stream",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-16",
        "application/jsonp",
        None,
    ],
)
def test_a_body_that_is_not_utf8_json_is_415(api, aws, method, path, content_type):
    response = send(api, method, path, json.dumps({"job_type": MARKER}), content_type=content_type)

    assert_refused(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert nothing_written(aws)


@pytest.mark.parametrize("content_type", ["APPLICATION/JSON", "application/json; charset=UTF-8", "Application/Json "])
def test_json_however_its_media_type_is_written_is_read(api, aws, content_type):
    body = {"job_type": "FEED_INTAKE_EXPORT", "start_date": "2025-01-01", "end_date": "2025-01-31"}

    response = send(api, "POST", JOBS, json.dumps(body), content_type=content_type)

    assert response.status == 201, response.body


def nested(depth: int) -> str:
    return '{"job_type": "FEED_INTAKE_EXPORT", "filters": {"x": ' + "[" * depth + "]" * depth + "}}"


@pytest.mark.reliability(
    scenario="Hostile JSON bodies",
    injected="invalid UTF-8 and UTF-16 bytes, a BOM, nesting 1,000 and 20,000 deep, 4,301-digit integers, "
    "NaN, Infinity, 1e400, duplicate keys, arrays, scalars, cut-short JSON; on every route with a body",
    checked="400 in the envelope, body not echoed, nothing written",
)
@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"\xff\xfe{}", True),  # not UTF-8
        ('{"a": 1}'.encode("utf-16"), True),
        ('\ufeff{"a": 1}'.encode(), True),  # a byte order mark
        (b"bm90IGJhc2U2NA==!!", False),  # said to be base64, and not
        (nested(1_000), False),
        (nested(20_000), False),  # deep enough to exhaust the parser's recursion, under the size limit
        ('{"job_type": "FEED_INTAKE_EXPORT", "filters": {"x": ' + "9" * 4_301 + "}}", False),
        ('{"job_type": "FEED_INTAKE_EXPORT", "filters": {"x": ' + "9" * 20 + "}}", False),
        ('{"job_type": "FEED_INTAKE_EXPORT", "filters": {"x": NaN}}', False),
        ('{"job_type": "FEED_INTAKE_EXPORT", "filters": {"x": -Infinity}}', False),
        ('{"job_type": "FEED_INTAKE_EXPORT", "filters": {"x": 1e400}}', False),
        ('{"job_type": "FEED_INTAKE_EXPORT", "job_type": "KPI_FEEDING_EXPORT"}', False),
        ('{"filters": {"a": 1, "a": 2}, "job_type": "FEED_INTAKE_EXPORT"}', False),
        (f'["{MARKER}"]', False),
        (f'"{MARKER}"', False),
        ("42", False),
        ("null", False),
        (f'{{"job_type": "{MARKER}"', False),  # cut short
        (f"{{'job_type': '{MARKER}'}}", False),
    ],
)
def test_a_body_that_is_not_one_plain_json_object_is_400(api, aws, method, path, raw, encoded):
    response = send(api, method, path, raw, encoded=encoded)

    assert_refused(response, 400, "VALIDATION_ERROR")
    assert nothing_written(aws)


@pytest.mark.reliability(
    scenario="Bodies over the size limit",
    injected="a body over 64 KiB on every route with a body",
    checked="413 in the envelope, nothing written",
)
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_body_over_the_size_limit_is_413(api, aws, method, path):
    raw = json.dumps({"job_type": "FEED_INTAKE_EXPORT", "padding": MARKER * 4_000})

    response = send(api, method, path, raw)

    assert_refused(response, 413, "PAYLOAD_TOO_LARGE")
    assert nothing_written(aws)


def test_nesting_up_to_the_limit_reaches_the_route_and_its_own_rules(api, aws):
    response = send(api, "POST", JOBS, nested(10))

    # Past the body check: the route's model refuses a list of lists as a filter value.
    assert_refused(response, 400, "VALIDATION_ERROR")
    assert "filters" in response.json["error"]["message"]


def test_a_get_or_delete_with_a_stray_body_ignores_it(api, aws):
    event = http_event("GET", JOBS, claims=claims_for("tenant-a", "[viewer]", "user-1"))
    event["headers"]["content-type"] = "text/plain"
    event["body"] = MARKER

    assert api.invoke(event).status == 200
