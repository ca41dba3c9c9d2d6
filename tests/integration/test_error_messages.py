"""An error message says what is wrong without sending back what was sent: a value (or a key that is not a
plain name) planted in any part of a request never appears in the answer, whatever the route."""

from __future__ import annotations

import pytest

from conftest import claims_for, http_event, valid_job_request
from support.schedules import valid_schedule

JOBS = "/api/v1/reports/jobs"
SCHEDULES = "/api/v1/reports/schedules"
REEXPORTS = "/api/v1/report-reexports"
JOB_ID = "01950000-0000-7000-8000-000000000001"
PLANTED = ("qzxqplant", "QZXQPLANT", "987654321987")
# Text a client could use to inject markup or to hide what it sent.
HOSTILE = ("<script>qzxqplant</script>", "qzxqplant\u202e", "qzxqplant\x00", "../qzxqplant")


def planted_values():
    # Upper and lower case, digits (a number quoted back), markup and a bidi override.
    return ["qzxqplant", "QZXQPLANT", "987654321987", HOSTILE[0], HOSTILE[1]]


BODIES = [
    ("POST", JOBS, lambda v: valid_job_request(job_type=v)),
    ("POST", JOBS, lambda v: valid_job_request(format=v)),
    ("POST", JOBS, lambda v: valid_job_request(compression=v)),
    ("POST", JOBS, lambda v: valid_job_request(start_date=v)),
    ("POST", JOBS, lambda v: valid_job_request(end_date=f"2025-01-{v}")),
    ("POST", JOBS, lambda v: valid_job_request(idempotency_key=v * 20)),
    ("POST", JOBS, lambda v: valid_job_request(filters={"source": {"nested": v}})),
    ("POST", JOBS, lambda v: valid_job_request(tenant_id=v)),
    ("POST", SCHEDULES, lambda v: valid_schedule(expression=f"cron({v} 6 * * ? *)")),
    ("POST", SCHEDULES, lambda v: valid_schedule(expression=f"rate({v} minutes)")),
    ("POST", SCHEDULES, lambda v: valid_schedule(expression=f"rate(5 {v})")),
    ("POST", SCHEDULES, lambda v: valid_schedule(expression=v)),
    ("POST", SCHEDULES, lambda v: valid_schedule(time_zone=v)),
    ("POST", SCHEDULES, lambda v: valid_schedule(start_at=v)),
    ("POST", SCHEDULES, lambda v: valid_schedule(description=v + "\x07")),
    ("POST", SCHEDULES, lambda v: valid_schedule(export={**valid_schedule()["export"], "period": v})),
    ("POST", SCHEDULES, lambda v: valid_schedule(export={**valid_schedule()["export"], "job_type": v})),
    ("POST", REEXPORTS, lambda v: {"report_id": v}),
    ("POST", REEXPORTS, lambda v: {"report_id": JOB_ID, "reason": v * 200}),
    ("POST", REEXPORTS, lambda v: {"report_id": JOB_ID, "overrides": {"format": v}}),
    ("PUT", f"{REEXPORTS}/{JOB_ID}", lambda v: {"expected_version": v}),
    ("PUT", f"{SCHEDULES}/{JOB_ID}", lambda v: {**valid_schedule(), "expected_version": v}),
]


def assert_not_echoed(response, value: str) -> None:
    assert 400 <= response.status < 500, response.body
    body = response.body.lower()
    for marker in PLANTED:
        if marker.lower() in value.lower():
            assert marker.lower() not in body, (value, response.body)


# Each case tries every planted value in one test: the emulated AWS behind it is set up once.
@pytest.mark.parametrize(("method", "path", "body"), BODIES)
def test_a_value_planted_in_a_body_is_not_sent_back(api, aws, method, path, body):
    for value in planted_values():
        assert_not_echoed(api.call(method, path, body=body(value)), value)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", JOBS, lambda k: valid_job_request(**{k: 1})),
        ("POST", JOBS, lambda k: valid_job_request(filters={"source": {k: 1}})),
        ("POST", SCHEDULES, lambda k: valid_schedule(**{k: 1})),
        ("POST", SCHEDULES, lambda k: valid_schedule(export={**valid_schedule()["export"], k: 1})),
        ("POST", REEXPORTS, lambda k: {"report_id": JOB_ID, "overrides": {k: "x"}}),
    ],
)
def test_a_key_that_is_not_a_plain_name_is_not_sent_back(api, aws, method, path, body):
    # An unknown field is named when its name is a plain identifier (overrides.job_type: unknown field),
    # never when it carries markup, control or look-alike characters.
    for key in HOSTILE:
        assert_not_echoed(api.call(method, path, body=body(key)), key)


def test_values_a_job_accepts_are_only_ever_sent_back_as_data(api, aws):
    # A farm id is the client's data: one that is accepted comes back in the job, as JSON.
    for value in HOSTILE:
        answer = api.create_job(valid_job_request(farm_id=value))

        assert answer.status == 400 or answer.json["farm_id"] == value


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (JOBS, {"status": "{v}"}),
        (JOBS, {"job_type": "{v}"}),
        (JOBS, {"limit": "{v}"}),
        (JOBS, {"next_cursor": "{v}"}),
        (JOBS, {"expired": "{v}"}),
        (f"{JOBS}/{{v}}", None),
        (f"{JOBS}/{{v}}/history", None),
        (f"{JOBS}/{{v}}/download", None),
        (f"{JOBS}/{JOB_ID}/history", {"next_cursor": "{v}"}),
        (REEXPORTS, {"status": "{v}"}),
        (f"{REEXPORTS}/{{v}}", None),
        (SCHEDULES, {"next_cursor": "{v}"}),
        (f"{SCHEDULES}/{{v}}", None),
        ("/api/v1/{v}", None),
    ],
)
def test_a_value_planted_in_a_path_or_query_is_not_sent_back(api, aws, path, query):
    for value in planted_values():
        filled = {name: text.format(v=value) for name, text in (query or {}).items()}
        claims = claims_for("tenant-a", "[tenant_admin]", "user-1")
        event = http_event("GET", path.format(v=value), claims=claims, query=filled)

        assert_not_echoed(api.invoke(event), value)


@pytest.mark.parametrize("header", ["if-match", "content-type"])
def test_a_value_planted_in_a_header_is_not_sent_back(api, aws, header):
    for value in planted_values():
        claims = claims_for("tenant-a", "[tenant_admin]", "user-1")
        event = http_event("PUT", f"{SCHEDULES}/{JOB_ID}", claims=claims, body=valid_schedule())
        event["headers"][header] = value

        assert_not_echoed(api.invoke(event), value)
