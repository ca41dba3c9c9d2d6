"""The schedules API against the emulated account (DynamoDB and EventBridge Scheduler in moto): every route,
validation before any write, roles, tenant isolation, optimistic locking, and the record and Scheduler's
schedule kept in step when the second write fails."""

from __future__ import annotations

import json

import pytest

from support.schedules import (
    GROUP,
    SCHEDULES,
    cut_off_scheduler,
    restore_scheduler,
    schedule_items,
    schedule_repository,
    scheduler_names,
    scheduler_schedule,
    valid_schedule,
)


def create(api, body=None, **kwargs):
    response = api.call("POST", SCHEDULES, body=valid_schedule() if body is None else body, **kwargs)
    assert response.status == 201, response.body
    return response.json


def test_a_created_schedule_is_stored_and_held_by_scheduler_with_its_next_firing(api, aws):
    response = api.call(
        "POST", SCHEDULES, body=valid_schedule(start_at="2030-06-15T00:00:00Z", end_at="2031-01-01T00:00:00Z")
    )

    assert response.status == 201, response.body
    schedule = response.json
    assert response.headers["location"] == f"{SCHEDULES}/{schedule['id']}"
    assert response.headers["etag"] == '"1"'
    assert (schedule["version"], schedule["tenant_id"], schedule["created_by"]) == (1, "tenant-a", "user-1")
    # The first of July 2030 at 06:00 in Oslo is 04:00 UTC (summer time).
    assert schedule["next_firing_at"] == "2030-07-01T04:00:00.000Z"
    held = scheduler_schedule("tenant-a", schedule["id"])
    assert held is not None
    assert (held["GroupName"], held["ScheduleExpression"], held["ScheduleExpressionTimezone"], held["State"]) == (
        GROUP,
        "cron(0 6 1 * ? *)",
        "Europe/Oslo",
        "ENABLED",
    )
    assert json.loads(held["Target"]["Input"]) == {
        "tenant_id": "tenant-a",
        "schedule_id": schedule["id"],
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    assert held["Target"]["RoleArn"].endswith(":role/report-export-scheduler")
    assert held["Target"]["DeadLetterConfig"]["Arn"].endswith(":report-export-scheduled-dlq")
    assert held["Target"]["Arn"].endswith(":function:report-export-scheduled")
    assert held["EndDate"].year == 2031
    assert held["Description"].startswith("tenant tenant-a: ")
    assert api.call("GET", f"{SCHEDULES}/{schedule['id']}").json == {**schedule, "last_runs": []}


def test_a_rate_schedule_counts_from_its_start(api, aws):
    schedule = create(api, valid_schedule(expression="rate(7 days)", start_at="2030-01-01T00:00:00Z"))

    assert schedule["next_firing_at"] == "2030-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"expression": "cron(0 6 1 * *)"}, "expression"),
        ({"expression": "cron(0 6 1 * MON *)"}, "expression"),
        ({"expression": "cron(61 6 1 * ? *)"}, "expression"),
        ({"expression": "rate(0 days)"}, "expression"),
        ({"expression": "rate(1 fortnight)"}, "expression"),
        ({"expression": "at(2030-01-01T00:00:00)"}, "expression"),
        ({"expression": "every monday"}, "expression"),
        ({"expression": ""}, "expression"),
        ({"expression": "cron(0 0 1 1 ? 2020)"}, "never fire"),
        ({"expression": "rate(30 minutes)"}, "once an hour"),
        ({"expression": "rate(59 minutes)"}, "once an hour"),
        ({"expression": "cron(*/15 * * * ? *)"}, "once an hour"),
        ({"expression": "cron(0,30 6 * * ? *)"}, "once an hour"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "America"}, "time_zone"),
        ({"start_at": "2030-01-01T00:00:00"}, "start_at"),
        ({"start_at": "2030-02-01T00:00:00Z", "end_at": "2030-01-01T00:00:00Z"}, "end_at"),
        ({"end_at": "2020-01-01T00:00:00Z"}, "end_at"),
        ({"export": {"job_type": "NO_SUCH_REPORT", "period": "previous_month"}}, "job_type"),
        ({"export": {"job_type": "FEED_INTAKE_EXPORT", "period": "last_century"}}, "period"),
        ({"export": {"job_type": "FEED_INTAKE_EXPORT"}}, "period"),
        ({"export": {"job_type": "FEED_INTAKE_EXPORT", "period": "previous_day", "filters": {"limit": 1}}}, "limit"),
        ({"export": {"job_type": "FEED_INTAKE_EXPORT", "period": "previous_day", "start_date": "2025-01-01"}}, ""),
        ({"enabled": "sometimes"}, "enabled"),
        ({"owner": "someone-else"}, "owner"),
        ({"description": "x" * 257}, "description"),
    ],
)
def test_an_invalid_schedule_is_refused_before_anything_is_written(api, aws, change, message):
    response = api.call("POST", SCHEDULES, body=valid_schedule(**change))

    assert response.status == 400, response.body
    assert response.error_code == "VALIDATION_ERROR"
    assert message in response.json["error"]["message"]
    assert schedule_items(aws) == []
    assert scheduler_names() == []


def configure(monkeypatch, **variables):
    """Settings as a cold start with these variables reads them."""
    from report_export.core.settings import get_settings
    from report_export.jobs.service import job_service
    from report_export.schedules.exports import scheduled_exports
    from report_export.schedules.service import schedule_service

    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    for cached in (get_settings, job_service, scheduled_exports, schedule_service):
        cached.cache_clear()


def test_a_period_longer_than_a_job_may_cover_is_refused(api, aws, monkeypatch):
    configure(monkeypatch, MAX_PERIOD_DAYS="31")
    export = {"job_type": "FEED_INTAKE_EXPORT", "period": "previous_quarter"}

    response = api.call("POST", SCHEDULES, body=valid_schedule(export=export))

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert "at most 31" in response.json["error"]["message"]
    assert scheduler_names() == []


def test_a_tenant_has_at_most_its_share_of_schedules_and_a_delete_frees_one(api, aws, monkeypatch):
    configure(monkeypatch, MAX_SCHEDULES_PER_TENANT="2")
    first, _ = create(api), create(api)

    refused = api.call("POST", SCHEDULES, body=valid_schedule())

    assert (refused.status, refused.error_code) == (409, "TOO_MANY_SCHEDULES")
    assert len(scheduler_names()) == 2
    assert len(api.call("GET", SCHEDULES).json["items"]) == 2
    assert api.call("POST", SCHEDULES, body=valid_schedule(), tenant="tenant-b").status == 201
    assert api.call("DELETE", f"{SCHEDULES}/{first['id']}").status == 204
    assert api.call("POST", SCHEDULES, body=valid_schedule()).status == 201


def test_a_burst_of_creates_never_passes_the_limit(api, serialized_aws, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    configure(monkeypatch, MAX_SCHEDULES_PER_TENANT="3")

    with ThreadPoolExecutor(10) as pool:
        statuses = sorted(pool.map(lambda _: api.call("POST", SCHEDULES, body=valid_schedule()).status, range(10)))

    assert statuses == [201] * 3 + [409] * 7
    assert len(scheduler_names()) == 3
    assert schedule_repository().count("tenant-a") == 3


@pytest.mark.parametrize("role", ["farm_manager", "house_operator", "viewer", "internal_service"])
def test_only_a_tenant_admin_writes_schedules(api, aws, role):
    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"
    as_role = {"roles": f"[{role}]"}

    assert api.call("POST", SCHEDULES, body=valid_schedule(), **as_role).status == 403
    assert api.call("PUT", path, body={**valid_schedule(), "expected_version": 1}, **as_role).status == 403
    assert api.call("DELETE", path, **as_role).status == 403
    assert api.call("GET", path).json["version"] == 1
    assert len(scheduler_names()) == 1


@pytest.mark.parametrize("role", ["tenant_admin", "farm_manager", "house_operator", "viewer"])
def test_readers_read_schedules(api, aws, role):
    schedule = create(api)

    assert api.call("GET", f"{SCHEDULES}/{schedule['id']}", roles=f"[{role}]").status == 200
    assert [item["id"] for item in api.call("GET", SCHEDULES, roles=f"[{role}]").json["items"]] == [schedule["id"]]


def test_an_internal_service_does_not_read_schedules(api, aws):
    schedule = create(api)

    assert api.call("GET", f"{SCHEDULES}/{schedule['id']}", roles="[internal_service]").status == 403
    assert api.call("GET", SCHEDULES, roles="[internal_service]").status == 403


def test_without_a_token_every_route_is_401(api, aws):
    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"

    for method, route, body in [
        ("POST", SCHEDULES, valid_schedule()),
        ("GET", SCHEDULES, None),
        ("GET", path, None),
        ("PUT", path, {**valid_schedule(), "expected_version": 1}),
        ("DELETE", path, None),
    ]:
        assert api.call(method, route, body=body, authenticated=False).status == 401, (method, route)


def test_one_tenant_can_neither_see_nor_change_nor_delete_another_tenants_schedule(api, aws):
    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"
    other = {"tenant": "tenant-b"}

    assert api.call("GET", path, **other).status == 404
    assert api.call("PUT", path, body={**valid_schedule(enabled=False), "expected_version": 1}, **other).status == 404
    assert api.call("DELETE", path, **other).status == 404
    assert api.call("GET", SCHEDULES, **other).json["items"] == []
    mine = api.call("GET", path).json
    assert (mine["version"], mine["enabled"]) == (1, True)
    assert scheduler_schedule("tenant-a", schedule["id"])["State"] == "ENABLED"
    # The same id under another tenant names another Scheduler schedule, which does not exist.
    assert scheduler_schedule("tenant-b", schedule["id"]) is None


@pytest.mark.parametrize("schedule_id", ["not-a-uuid", "01a23489-9ab3-752d-b64e-a75fcdf267b1", "../x"])
def test_an_unknown_or_malformed_id_is_404(api, aws, schedule_id):
    response = api.call("GET", f"{SCHEDULES}/{schedule_id}")

    assert (response.status, response.error_code) == (404, "NOT_FOUND")


def test_an_update_replaces_the_schedule_at_the_version_read_and_scheduler_follows(api, aws):
    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"
    changed = valid_schedule(expression="rate(1 day)", time_zone="UTC", enabled=False)

    response = api.call("PUT", path, body={**changed, "expected_version": 1})

    assert response.status == 200, response.body
    updated = response.json
    assert (updated["version"], updated["expression"], updated["enabled"], updated["next_firing_at"]) == (
        2,
        "rate(1 day)",
        False,
        None,
    )
    assert (updated["created_at"], updated["created_by"]) == (schedule["created_at"], schedule["created_by"])
    assert response.headers["etag"] == '"2"'
    held = scheduler_schedule("tenant-a", schedule["id"])
    assert (held["ScheduleExpression"], held["ScheduleExpressionTimezone"], held["State"]) == (
        "rate(1 day)",
        "UTC",
        "DISABLED",
    )
    again = api.call("PUT", path, body=valid_schedule(enabled=True), query=None)
    assert (again.status, again.error_code) == (400, "VALIDATION_ERROR")


def test_a_stale_version_is_a_conflict_and_changes_nothing(api, aws):
    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"
    assert api.call("PUT", path, body={**valid_schedule(description="first"), "expected_version": 1}).status == 200

    stale = api.call("PUT", path, body={**valid_schedule(description="second"), "expected_version": 1})

    assert (stale.status, stale.error_code) == (409, "VERSION_CONFLICT")
    assert api.call("GET", path).json["description"] == "first"
    assert scheduler_schedule("tenant-a", schedule["id"])["Description"] == "tenant tenant-a: first"


def test_the_version_can_come_as_if_match_and_must_agree_with_the_body(api, aws):
    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"

    def put(body, if_match):
        from support.events import claims_for, http_event

        event = http_event("PUT", path, claims=claims_for("tenant-a", "[tenant_admin]", "user-1"), body=body)
        event["headers"]["if-match"] = if_match
        return api.invoke(event)

    mismatch = put({**valid_schedule(), "expected_version": 2}, '"1"')
    garbage = put(valid_schedule(), "*")
    by_header = put(valid_schedule(description="via header"), '"1"')

    assert (mismatch.status, garbage.status) == (400, 400)
    assert "If-Match must be the schedule's version" in garbage.json["error"]["message"]
    assert (by_header.status, by_header.json["version"]) == (200, 2)


def test_a_deleted_schedule_is_gone_from_the_api_and_from_scheduler(api, aws):
    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"

    response = api.call("DELETE", path)

    assert (response.status, response.body) == (204, "")
    assert api.call("GET", path).status == 404
    assert api.call("GET", SCHEDULES).json["items"] == []
    assert scheduler_schedule("tenant-a", schedule["id"]) is None
    assert schedule_items(aws) == []
    assert schedule_repository().count("tenant-a") == 0
    assert api.call("DELETE", path).status == 404


def test_a_delete_with_a_stale_if_match_is_a_conflict(api, aws):
    from support.events import claims_for, http_event

    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"
    assert api.call("PUT", path, body={**valid_schedule(), "expected_version": 1}).status == 200
    event = http_event("DELETE", path, claims=claims_for("tenant-a", "[tenant_admin]", "user-1"))
    event["headers"]["if-match"] = '"1"'

    response = api.invoke(event)

    assert (response.status, response.error_code) == (409, "VERSION_CONFLICT")
    assert scheduler_schedule("tenant-a", schedule["id"]) is not None


def test_the_list_pages_newest_first_and_a_cursor_is_bound_to_its_tenant(api, aws):
    ids = [create(api, valid_schedule(description=f"schedule {n}"))["id"] for n in range(5)]
    create(api, tenant="tenant-b")

    pages = api.read_all_pages(SCHEDULES, 2)

    assert pages == [ids[::-1][0:2], ids[::-1][2:4], ids[::-1][4:5]]
    cursor = api.call("GET", SCHEDULES, query={"limit": 2}).json["next_cursor"]
    foreign = api.call("GET", SCHEDULES, query={"limit": 2, "next_cursor": cursor}, tenant="tenant-b")
    assert (foreign.status, foreign.error_code) == (400, "INVALID_CURSOR")


def test_when_scheduler_cannot_be_reached_a_create_writes_nothing(api, aws, monkeypatch):
    cut_off_scheduler(monkeypatch)

    response = api.call("POST", SCHEDULES, body=valid_schedule())

    assert (response.status, response.error_code) == (503, "SERVICE_UNAVAILABLE")
    assert "unchanged" in response.json["error"]["message"]
    assert schedule_items(aws) == []
    assert schedule_repository().count("tenant-a") == 0
    restore_scheduler(monkeypatch)
    assert scheduler_names() == []


def test_when_scheduler_cannot_be_reached_an_update_is_rolled_back(api, aws, monkeypatch):
    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"
    cut_off_scheduler(monkeypatch)

    response = api.call("PUT", path, body={**valid_schedule(expression="rate(1 hour)"), "expected_version": 1})

    assert (response.status, response.error_code) == (503, "SERVICE_UNAVAILABLE")
    restore_scheduler(monkeypatch)
    after = api.call("GET", path)
    # As it was, under a version of its own: a client that read version 2 mid-change cannot write over it.
    assert (after.json["expression"], after.json["version"]) == ("cron(0 6 1 * ? *)", 3)
    stored = schedule_repository().get("tenant-a", schedule["id"], consistent=True)
    assert stored.pending_since is None
    assert scheduler_schedule("tenant-a", schedule["id"])["ScheduleExpression"] == "cron(0 6 1 * ? *)"
    retried = api.call("PUT", path, body={**valid_schedule(expression="rate(1 hour)"), "expected_version": 3})
    assert retried.status == 200, retried.body


def test_when_scheduler_cannot_be_reached_a_delete_keeps_the_schedule(api, aws, monkeypatch):
    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"
    cut_off_scheduler(monkeypatch)

    response = api.call("DELETE", path)

    assert (response.status, response.error_code) == (503, "SERVICE_UNAVAILABLE")
    restore_scheduler(monkeypatch)
    assert api.call("GET", path).json["version"] == 3
    assert scheduler_schedule("tenant-a", schedule["id"]) is not None
    assert api.call("DELETE", path).status == 204


def test_a_change_in_progress_refuses_other_writes(api, aws):
    from support.schedules import leave_half_applied

    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"
    stored = schedule_repository().get("tenant-a", schedule["id"], consistent=True)
    leave_half_applied(stored, minutes_ago=0, description="in flight")

    put = api.call("PUT", path, body={**valid_schedule(), "expected_version": 2})
    delete = api.call("DELETE", path)

    assert (put.status, put.error_code) == (409, "CONCURRENT_UPDATE")
    assert (delete.status, delete.error_code) == (409, "CONCURRENT_UPDATE")


# Found by trying the running service as a hostile client would.


@pytest.mark.parametrize(
    "window",
    [
        {"start_at": "0999-06-01T00:00:00Z"},
        {"start_at": "0001-01-01T00:00:00+01:00"},
        {"start_at": "1969-12-31T23:59:59Z"},
        {"end_at": "9999-12-31T23:59:59-05:00"},
        {"end_at": "2200-01-01T00:00:00Z"},
        {"start_at": 1800000000},
        {"start_at": "tomorrow"},
    ],
)
def test_a_window_outside_the_years_scheduler_covers_is_refused(api, aws, window):
    response = api.call("POST", SCHEDULES, body=valid_schedule(**window))

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert next(iter(window)) in response.json["error"]["message"]
    assert schedule_items(aws) == [] and scheduler_names() == []


@pytest.mark.parametrize(
    "expression",
    ["rate(3661 days)", "rate(999999999 days)", "rate(99999999999 minutes)", "rate(99999999999999999999 days)"],
)
def test_a_rate_longer_than_ten_years_is_refused(api, aws, expression):
    response = api.call("POST", SCHEDULES, body=valid_schedule(expression=expression))

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert "at most 3660 days" in response.json["error"]["message"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize("route", [SCHEDULES, "/api/v1/reports/jobs"])
def test_a_number_json_cannot_hold_is_refused_in_filters_not_stored_as_null(api, aws, number, route):
    if route == SCHEDULES:
        raw = json.dumps(valid_schedule()).replace('"farm_id": "farm-1"', '"farm_id": "farm-1", "filters": {"x": 0}')
    else:
        raw = json.dumps({"job_type": "FEED_INTAKE_EXPORT", "filters": {"x": 0}})
    raw = raw.replace('{"x": 0}', f'{{"x": {number}}}')

    response = api.call("POST", route, raw_body=raw)

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert schedule_items(aws) == [] and aws.job_items("tenant-a") == []


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory", "right/UTC", "posix/Europe/Oslo", "x" * 64])
def test_a_zone_name_outside_the_iana_database_is_refused(api, aws, zone):
    response = api.call("POST", SCHEDULES, body=valid_schedule(time_zone=zone))

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert "IANA" in response.json["error"]["message"]


@pytest.mark.parametrize("zone", ["US/Pacific", "Etc/GMT+5", "UTC", "Asia/Kolkata"])
def test_an_iana_link_or_fixed_zone_is_accepted(api, aws, zone):
    assert create(api, valid_schedule(time_zone=zone))["time_zone"] == zone


@pytest.mark.parametrize(
    "change",
    [{"enabled": "yes"}, {"enabled": 1}, {"enabled": "true"}, {"expected_version": True}, {"expected_version": "1"}],
)
def test_a_flag_or_version_of_the_wrong_json_type_is_refused_rather_than_coerced(api, aws, change):
    schedule = create(api)

    response = api.call(
        "PUT", f"{SCHEDULES}/{schedule['id']}", body={**valid_schedule(), "expected_version": 1, **change}
    )

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert api.call("GET", f"{SCHEDULES}/{schedule['id']}").json["version"] == 1


def test_a_period_is_checked_at_its_longest_not_as_long_as_it_is_today(api, aws, monkeypatch):
    configure(monkeypatch, MAX_PERIOD_DAYS="30")

    response = api.call("POST", SCHEDULES, body=valid_schedule())  # previous_month: up to 31 days

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert "up to 31 days" in response.json["error"]["message"]
    weekly = valid_schedule(export={"job_type": "FEED_INTAKE_EXPORT", "period": "previous_week"})
    assert api.call("POST", SCHEDULES, body=weekly).status == 201


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("cron(0\t6\n1 * ? *)", "cron(0 6 1 * ? *)"),
        ("  cron(  0   6 1 *  ? * ) ", "cron(0 6 1 * ? *)"),
        ("cron(0 6 lw * ? *)", "cron(0 6 LW * ? *)"),
        ("cron(0 6 ? * mon-fri *)", "cron(0 6 ? * MON-FRI *)"),
        ("rate(1 days)", "rate(1 day)"),
        ("rate(2 hour)", "rate(2 hours)"),
        ("rate(01 day)", "rate(1 day)"),
    ],
)
def test_an_expression_is_stored_and_sent_to_scheduler_in_its_canonical_form(api, aws, typed, sent):
    schedule = create(api, valid_schedule(expression=typed))

    assert schedule["expression"] == sent
    assert scheduler_schedule("tenant-a", schedule["id"])["ScheduleExpression"] == sent


def test_a_schedule_that_never_fires_says_why_without_naming_a_window_it_does_not_have(api, aws):
    response = api.call("POST", SCHEDULES, body=valid_schedule(expression="cron(0 6 31 2 ? *)"))

    assert response.status == 400
    assert "never fire" in response.json["error"]["message"]
    assert "end_at" not in response.json["error"]["message"]


def test_a_rate_whose_start_has_passed_fires_on_its_own_grid_in_scheduler_as_the_api_says(api, aws):
    from datetime import UTC, datetime, timedelta

    started = (datetime.now(UTC) - timedelta(days=2, hours=3)).replace(microsecond=0)
    body = valid_schedule(expression="rate(1 day)", time_zone="UTC", start_at=started.isoformat())
    schedule = create(api, body)
    expected = started + timedelta(days=3)

    assert schedule["next_firing_at"] == expected.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert scheduler_schedule("tenant-a", schedule["id"])["StartDate"] == expected
    updated = api.call(
        "PUT", f"{SCHEDULES}/{schedule['id']}", body={**body, "description": "renamed", "expected_version": 1}
    )
    assert updated.json["next_firing_at"] == schedule["next_firing_at"]
    assert scheduler_schedule("tenant-a", schedule["id"])["StartDate"] == expected


def test_a_delete_without_a_version_reads_again_when_a_change_lands_between_its_read_and_its_write(
    api, aws, monkeypatch
):
    from report_export.core.auth import Principal
    from report_export.core.models.schedules import UpdateScheduleRequest
    from report_export.schedules.service import schedule_service
    from report_export.schedules.sync import ScheduleSync

    schedule = create(api)
    admin = Principal(subject="user-2", tenant_id="tenant-a", roles=frozenset({"tenant_admin"}))
    real_delete = ScheduleSync.delete
    landed = []

    def another_change_lands_first(sync, current):
        if not landed:
            change = UpdateScheduleRequest.model_validate(valid_schedule(description="changed meanwhile"))
            landed.append(
                schedule_service().update_schedule(admin, schedule["id"], change, expected_version=current.version)
            )
        return real_delete(sync, current)

    monkeypatch.setattr(ScheduleSync, "delete", another_change_lands_first)

    response = api.call("DELETE", f"{SCHEDULES}/{schedule['id']}")

    assert [change.version for change in landed] == [2]
    assert response.status == 204, response.body
    assert scheduler_schedule("tenant-a", schedule["id"]) is None


# Found by probing the running service a second time.


@pytest.mark.parametrize("if_match", ['"0"', '"00"', "0"])
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_version_zero_is_a_version_that_conflicts_not_no_version(api, aws, method, if_match):
    from support.events import claims_for, http_event

    schedule = create(api)
    path = f"{SCHEDULES}/{schedule['id']}"
    body = valid_schedule() if method == "PUT" else None
    event = http_event(method, path, claims=claims_for("tenant-a", "[tenant_admin]", "user-1"), body=body)
    event["headers"]["if-match"] = if_match

    response = api.invoke(event)

    assert (response.status, response.error_code) == (409, "VERSION_CONFLICT")
    assert scheduler_schedule("tenant-a", schedule["id"]) is not None


def finish(schedule_id: str) -> None:
    """As if time had passed its end: the record's end_at is behind us (Scheduler keeps what it had)."""
    from dataclasses import replace
    from datetime import UTC, datetime

    repository = schedule_repository()
    stored = repository.get("tenant-a", schedule_id, consistent=True)
    ended = stored.schedule.model_copy(update={"end_at": datetime(2026, 1, 1, tzinfo=UTC)})
    repository.replace(replace(stored, schedule=ended), at_version=stored.version)


@pytest.mark.parametrize(
    "change", [{"enabled": False}, {"description": "renamed after it ended"}, {"enabled": False, "description": "x"}]
)
def test_a_finished_schedule_can_still_be_switched_off_or_renamed(api, aws, change):
    schedule = create(api)
    finish(schedule["id"])
    body = {**valid_schedule(end_at="2026-01-01T00:00:00Z"), **change, "expected_version": 1}

    response = api.call("PUT", f"{SCHEDULES}/{schedule['id']}", body=body)

    assert response.status == 200, response.body
    assert response.json["next_firing_at"] is None


def test_a_finished_schedule_is_not_switched_on_or_retimed_without_a_firing_to_come(api, aws):
    schedule = create(api)
    finish(schedule["id"])
    path = f"{SCHEDULES}/{schedule['id']}"
    off = {**valid_schedule(end_at="2026-01-01T00:00:00Z", enabled=False), "expected_version": 1}
    assert api.call("PUT", path, body=off).status == 200

    back_on = api.call("PUT", path, body={**off, "enabled": True, "expected_version": 2})
    retimed = api.call("PUT", path, body={**off, "enabled": True, "expression": "rate(1 day)", "expected_version": 2})

    assert (back_on.status, retimed.status) == (400, 400)
    assert "end_at is in the past" in back_on.json["error"]["message"]


def test_a_create_that_collides_with_another_on_the_tenants_count_is_tried_again(api, aws, monkeypatch):
    from botocore.exceptions import ClientError

    from report_export.aws import clients

    client = clients.dynamodb()
    real = client.transact_write_items
    collisions = []

    def collide_once(**request):
        if not collisions and any("SCHEDULE_COUNT" in json.dumps(item) for item in request["TransactItems"]):
            collisions.append(1)
            # What DynamoDB answers when another transaction writes the same count item at that moment.
            error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
            reasons = [{"Code": "None"}, {"Code": "TransactionConflict"}]
            raise ClientError({"Error": error, "CancellationReasons": reasons}, "TransactWriteItems")
        return real(**request)

    monkeypatch.setattr(client, "transact_write_items", collide_once)

    response = api.call("POST", SCHEDULES, body=valid_schedule())

    assert collisions == [1]
    assert response.status == 201, response.body
    assert schedule_repository().count("tenant-a") == 1


@pytest.mark.parametrize("moment", ["1893456000", "2030", "20300101T000000Z", "next monday"])
def test_a_window_given_as_digits_or_words_is_refused(api, aws, moment):
    response = api.call("POST", SCHEDULES, body=valid_schedule(start_at=moment))

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert "ISO 8601" in response.json["error"]["message"]


def test_a_window_is_kept_to_the_millisecond_in_the_record_and_in_scheduler(api, aws):
    schedule = create(api, valid_schedule(start_at="2030-01-01T00:00:00.123456789Z"))

    assert schedule["start_at"] == "2030-01-01T00:00:00.123Z"
    assert scheduler_schedule("tenant-a", schedule["id"])["StartDate"].microsecond == 123000


@pytest.mark.parametrize("description", ["nul\x00byte", "right\u202eto left", "bell\x07", "line\nbreak"])
def test_a_description_with_hidden_characters_is_refused(api, aws, description):
    response = api.call("POST", SCHEDULES, body=valid_schedule(description=description))

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert scheduler_names() == []


def test_a_schedule_whose_only_firing_falls_at_its_end_never_fires(api, aws):
    once = {"expression": "cron(0 6 1 1 ? 2030)", "time_zone": "UTC"}

    just_after = api.call("POST", SCHEDULES, body=valid_schedule(**once, end_at="2030-01-01T06:00:00.001Z"))
    at_its_end = api.call("POST", SCHEDULES, body=valid_schedule(**once, end_at="2030-01-01T06:00:00Z"))

    # Scheduler invokes before its EndDate: a firing at end_at itself is none.
    assert (just_after.status, just_after.json["next_firing_at"]) == (201, "2030-01-01T06:00:00.000Z")
    assert (at_its_end.status, at_its_end.error_code) == (400, "VALIDATION_ERROR")
    assert "never fire" in at_its_end.json["error"]["message"]
