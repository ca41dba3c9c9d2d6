"""Who may do what: every role on every route, and one tenant never sees another's jobs."""

import pytest

from conftest import valid_job_request

JOBS = "/api/v1/reports/jobs"
ROLES = ["tenant_admin", "farm_manager", "house_operator", "viewer"]
WRITERS = {"tenant_admin", "farm_manager"}


@pytest.fixture
def job_id(api):
    return api.create_job(tenant="tenant-a").json["id"]


def routes(job_id):
    return {
        "create": ("POST", JOBS, valid_job_request(), WRITERS),
        "list": ("GET", JOBS, None, set(ROLES)),
        "get": ("GET", f"{JOBS}/{job_id}", None, set(ROLES)),
        "cancel": ("DELETE", f"{JOBS}/{job_id}", None, WRITERS),
    }


@pytest.mark.parametrize("route", ["create", "list", "get", "cancel"])
@pytest.mark.parametrize("role", [*ROLES, "auditor", None])
def test_role_matrix(api, job_id, route, role):
    method, path, body, allowed = routes(job_id)[route]
    roles = f"[{role}]" if role else None

    response = api.call(method, path, body=body, roles=roles)

    if role in allowed:
        assert response.status in {200, 201}, response.body
    else:
        assert (response.status, response.error_code) == (403, "FORBIDDEN")


@pytest.mark.parametrize("route", ["create", "list", "get", "cancel"])
def test_no_token_is_401(api, job_id, route):
    method, path, body, _ = routes(job_id)[route]

    response = api.call(method, path, body=body, authenticated=False)

    assert (response.status, response.error_code) == (401, "UNAUTHORIZED")


@pytest.mark.parametrize("route", ["create", "list", "get", "cancel"])
def test_a_token_without_tenant_is_401(api, job_id, route):
    method, path, body, _ = routes(job_id)[route]

    response = api.call(method, path, body=body, tenant=None)

    assert (response.status, response.error_code) == (401, "UNAUTHORIZED")


def test_roles_from_cognito_groups_and_json_arrays_are_honoured(api):
    from support.events import http_event

    cognito = {"sub": "u1", "tenant_id": "tenant-a", "cognito:groups": "[farm_manager]"}
    json_array = {"sub": "u2", "tenant_id": "tenant-a", "roles": '["viewer", "farm_manager"]'}

    assert api.invoke(http_event("POST", JOBS, claims=cognito, body=valid_job_request())).status == 201
    assert api.invoke(http_event("POST", JOBS, claims=json_array, body=valid_job_request())).status == 201


def test_tenants_are_isolated(api, aws):
    a_jobs = [api.create_job(tenant="tenant-a").json["id"] for _ in range(3)]
    b_job = api.create_job(tenant="tenant-b").json["id"]

    b_list = api.call("GET", JOBS, tenant="tenant-b")
    assert [item["id"] for item in b_list.json["items"]] == [b_job]
    for status in ["queued", "cancelled"]:
        filtered = api.call("GET", JOBS, tenant="tenant-b", query={"status": status}).json["items"]
        assert {item["id"] for item in filtered} <= {b_job}
    for job_id in a_jobs:
        for method in ["GET", "DELETE"]:
            response = api.call(method, f"{JOBS}/{job_id}", tenant="tenant-b")
            assert (response.status, response.error_code) == (404, "NOT_FOUND")
            assert response.json["error"]["message"] == "Job not found"
    assert all(api.call("GET", f"{JOBS}/{job_id}", tenant="tenant-a").json["status"] == "queued" for job_id in a_jobs)
