"""The report-type catalogue through the API handler: what it lists is the definitions, it is readable by every
reader and no one else, hostile names answer 4xx in the envelope, and what it says a create request may (and may
not) carry is what POST /api/v1/reports/jobs really accepts (and refuses)."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from local.template import load_template
from report_export.core.models.common import READER_ROLES, Role
from report_export.core.settings import get_settings
from report_export.jobs.service import job_service
from report_export.reports import REPORT_DEFINITIONS

from conftest import valid_job_request

REPORT_TYPES = "/api/v1/report-types"
HOSTILE = [
    "NO_SUCH_EXPORT",
    "feed_intake_export",
    "Feed_Intake_Export",
    "FEED_INTAKE_EXPORT ",
    "FEED_INTAKE_EXPORT%00",
    "nul\x00byte",
    "\u00f8\U0001f600",
    "F\u0130ELD",
    "../FEED_INTAKE_EXPORT",
    "'; DROP",
    "X" * 64,
]
# A filter value of each JSON type the catalogue names.
SAMPLE_VALUES = {"boolean": True, "integer": 3, "number": 1.25, "string": "MANUAL", "array": ["h1", "h2"]}


def listed(api, **kwargs) -> list[dict]:
    response = api.call("GET", REPORT_TYPES, roles="[viewer]", **kwargs)
    assert response.status == 200, response.body
    return response.json["items"]


def a_catalogue_entry(api) -> dict:
    return listed(api)[0]


def envelope_of(response) -> dict:
    assert response.headers["content-type"] == "application/json"
    error = response.json["error"]
    assert error["code"] and error["traceId"]
    return error


def configure(monkeypatch, **variables):
    """Settings as a cold start with these variables reads them."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    job_service.cache_clear()


def test_every_report_type_is_listed_in_the_registry_order_with_its_definition(api):
    items = listed(api)

    assert [item["job_type"] for item in items] == list(REPORT_DEFINITIONS)
    for item, definition in zip(items, REPORT_DEFINITIONS.values(), strict=True):
        assert item["columns"] == [
            {
                "name": column.name,
                "type": column.kind.value,
                "nullable": not column.required,
                "description": column.description,
            }
            for column in definition.columns
        ]
        assert (item["title"], item["description"], item["definition_version"]) == (
            definition.title,
            definition.description,
            definition.version,
        )
        assert item["sort_key"] == list(definition.sort_key)
        assert item["period"]["slicing"] == (definition.slicing.value if definition.slicing else None)
        assert (item["formats"], item["compressions"]) == (["csv", "json"], ["gzip"])
        assert item["scope_fields"] == ["farm_id", "barn_id", "batch_id"]


def test_a_column_that_may_be_empty_is_nullable(api):
    feed = next(item for item in listed(api) if item["job_type"] == "FEED_INTAKE_EXPORT")
    nullable = {column["name"]: column["nullable"] for column in feed["columns"]}

    assert (nullable["id"], nullable["batch_id"], nullable["notes"]) == (False, True, True)


@pytest.mark.parametrize("job_type", list(REPORT_DEFINITIONS))
def test_one_report_type_is_the_one_listed(api, job_type):
    response = api.call("GET", f"{REPORT_TYPES}/{job_type}", roles="[house_operator]")

    assert response.status == 200, response.body
    assert response.json == next(item for item in listed(api) if item["job_type"] == job_type)


@pytest.mark.parametrize("value", HOSTILE)
def test_an_unknown_or_hostile_job_type_is_404_in_the_envelope(api, value):
    response = api.call("GET", f"{REPORT_TYPES}/{value}")

    assert response.status == 404, response.body
    error = envelope_of(response)
    assert error["code"] == "NOT_FOUND"
    assert value not in error["message"]


def test_an_overlong_job_type_is_refused_before_any_lookup(api):
    response = api.call("GET", f"{REPORT_TYPES}/{'A' * 1000}")

    assert response.status == 400
    error = envelope_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert "A" * 65 not in error["message"]


@pytest.mark.parametrize("path", [REPORT_TYPES, f"{REPORT_TYPES}/FEED_INTAKE_EXPORT"])
@pytest.mark.parametrize("role", sorted(READER_ROLES))
def test_every_reader_may_read_the_catalogue(api, path, role):
    assert api.call("GET", path, roles=f"[{role}]").status == 200


@pytest.mark.parametrize("path", [REPORT_TYPES, f"{REPORT_TYPES}/FEED_INTAKE_EXPORT"])
@pytest.mark.parametrize("roles", [f"[{Role.INTERNAL_SERVICE}]", "[auditor]", None])
def test_a_caller_without_a_reader_role_is_forbidden(api, path, roles):
    response = api.call("GET", path, roles=roles)

    assert (response.status, response.error_code) == (403, "FORBIDDEN")


@pytest.mark.parametrize("path", [REPORT_TYPES, f"{REPORT_TYPES}/FEED_INTAKE_EXPORT"])
@pytest.mark.parametrize("caller", [{"authenticated": False}, {"tenant": None}])
def test_no_token_or_no_tenant_is_401(api, path, caller):
    response = api.call("GET", path, **caller)

    assert (response.status, response.error_code) == (401, "UNAUTHORIZED")


def test_the_longest_period_follows_max_period_days_and_the_create_route_holds_to_it(api, monkeypatch):
    configure(monkeypatch, MAX_PERIOD_DAYS="31")

    assert {item["period"]["max_days"] for item in listed(api)} == {31}
    first = date(2025, 1, 1)
    longest = valid_job_request(start_date=first.isoformat(), end_date=(first + timedelta(days=30)).isoformat())
    too_long = valid_job_request(start_date=first.isoformat(), end_date=(first + timedelta(days=31)).isoformat())
    assert api.create_job(longest).status == 201
    refused = api.create_job(too_long)
    assert (refused.status, refused.error_code) == (400, "VALIDATION_ERROR")


def test_no_period_is_accepted_as_the_catalogue_says(api):
    period = a_catalogue_entry(api)["period"]

    response = api.create_job(valid_job_request(start_date=None, end_date=None))

    assert period["required"] is False
    assert response.status == 201, response.body


def test_every_filter_name_the_catalogue_reserves_is_refused_by_the_create_route(api):
    reserved = a_catalogue_entry(api)["filters"]["reserved_names"]

    assert {"tenant_id", "farm_id", "start_date", "cursor"} <= set(reserved)
    for name in reserved:
        response = api.create_job(valid_job_request(filters={name: "x"}))
        assert (response.status, response.error_code) == (400, "VALIDATION_ERROR"), name


def test_max_count_filters_are_accepted_and_one_more_is_refused(api):
    max_count = a_catalogue_entry(api)["filters"]["max_count"]

    accepted = api.create_job(valid_job_request(filters={f"f{index}": index for index in range(max_count)}))
    refused = api.create_job(valid_job_request(filters={f"f{index}": index for index in range(max_count + 1)}))

    assert accepted.status == 201, accepted.body
    assert (refused.status, refused.error_code) == (400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda length, items: {"note": "x" * length}, id="a text value"),
        pytest.param(lambda length, items: {"tags": ["x" * length]}, id="a string in an array"),
        pytest.param(lambda length, items: {"tags": ["x"] * items}, id="an array's items"),
    ],
)
def test_the_value_limits_the_catalogue_gives_are_the_create_routes_own(api, build):
    rules = a_catalogue_entry(api)["filters"]
    length, items = rules["max_text_length"], rules["max_list_items"]

    at_the_limit = api.create_job(valid_job_request(filters=build(length, items)))
    past_it = api.create_job(valid_job_request(filters=build(length + 1, items + 1)))

    assert at_the_limit.status == 201, at_the_limit.body
    assert (past_it.status, past_it.error_code) == (400, "VALIDATION_ERROR")


def test_scope_ids_follow_the_catalogues_pattern(api):
    pattern = re.compile(a_catalogue_entry(api)["scope_id_pattern"])
    for value in ("farm-1", "F.2_b", "a" * 64, "a" * 65, "fårm", "a/b", "-farm", ""):
        response = api.create_job(valid_job_request(farm_id=value))
        expected = 201 if pattern.fullmatch(value) else 400
        assert response.status == expected, (value, response.body)


def test_filters_over_max_bytes_are_refused(api):
    max_bytes = a_catalogue_entry(api)["filters"]["max_bytes"]
    # Each entry is "fN":"<250 characters>", over 250 bytes: enough of them pass max_bytes while staying within
    # max_count and the 256 characters a text value may have, so only the size can refuse them.
    filters = {f"f{index}": "x" * 250 for index in range(max_bytes // 250 + 1)}

    response = api.create_job(valid_job_request(filters=filters))

    assert len(filters) <= a_catalogue_entry(api)["filters"]["max_count"]
    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR")
    assert str(max_bytes) in response.json["error"]["message"]


def test_a_value_of_each_listed_type_is_accepted_and_a_name_off_the_pattern_is_refused(api):
    rules = a_catalogue_entry(api)["filters"]
    filters = {f"of_{kind}": SAMPLE_VALUES[kind] for kind in rules["value_types"]}

    accepted = api.create_job(valid_job_request(filters=filters))
    refused = api.create_job(valid_job_request(filters={"1starts_with_a_digit": "x"}))

    assert accepted.status == 201, accepted.body
    assert accepted.json["filters"] == filters
    assert (refused.status, refused.error_code) == (400, "VALIDATION_ERROR")


def test_every_listed_format_compression_and_scope_field_is_accepted_by_the_create_route(api):
    entry = a_catalogue_entry(api)
    scope = {name: f"{name}-1" for name in entry["scope_fields"]}

    for format in entry["formats"]:
        for compression in [*entry["compressions"], None]:
            request = valid_job_request(format=format, compression=compression, **scope)
            response = api.create_job(request)
            assert response.status == 201, response.body
            assert {name: response.json[name] for name in scope} == scope


def test_the_openapi_document_lists_both_routes_with_the_report_type_schema(api):
    document = api.call("GET", "/api-docs/openapi.json", authenticated=False).json

    listing = document["paths"][REPORT_TYPES]["get"]
    one = document["paths"][f"{REPORT_TYPES}/{{job_type}}"]["get"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReportTypeList"
    }
    assert one["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReportType"
    }
    for operation in (listing, one):
        assert operation["summary"] and "Roles: all readers" in operation["description"]
        assert operation["security"] == [{"bearerAuth": []}]
        assert {"401", "403"} <= set(operation["responses"])
    assert {"400", "404"} <= set(one["responses"])
    [parameter] = one["parameters"]
    assert (parameter["name"], parameter["in"], parameter["schema"]["maxLength"]) == ("job_type", "path", 64)
    schemas = document["components"]["schemas"]
    assert schemas["ReportTypeList"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/ReportType"}
    report_type = schemas["ReportType"]
    assert set(report_type["properties"]) == {
        "job_type",
        "title",
        "description",
        "definition_version",
        "columns",
        "formats",
        "compressions",
        "sort_key",
        "scope_fields",
        "scope_id_pattern",
        "filters",
        "period",
    }
    [example] = report_type["examples"]
    assert example["job_type"] == "FEED_INTAKE_EXPORT"


def test_the_template_routes_both_paths_to_the_api_function_behind_the_jwt_authorizer():
    """What a deployment and the local stack's gateway route: without the events, neither path reaches the code."""
    resources = load_template()["Resources"]
    events = resources["ApiFunction"]["Properties"]["Events"].values()
    routes = {(event["Properties"]["Method"], event["Properties"]["Path"]): event for event in events}
    default_authorizer = resources["ReportsHttpApi"]["Properties"]["Auth"]["DefaultAuthorizer"]

    for path in (REPORT_TYPES, f"{REPORT_TYPES}/{{job_type}}"):
        event = routes[("GET", path)]
        assert (event["Type"], event["Properties"]["ApiId"]) == ("HttpApi", {"Ref": "ReportsHttpApi"})
        # No Auth of its own: the API's JWT authorizer checks the token before the function runs.
        assert "Auth" not in event["Properties"] and default_authorizer
