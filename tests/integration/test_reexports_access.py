"""Who may do what on the re-export routes and the report history: every role on every route.

internal_service is a role of other services, not of people: it may only PUT a re-export's result,
and it is neither a reader nor a writer.
"""

from __future__ import annotations

import hashlib

import pytest

from support.events import claims_for, http_event
from support.reexports import JOBS, REEXPORTS, REPORT_BODY, put_succeeded_report

ROLES = ["tenant_admin", "farm_manager", "house_operator", "viewer", "internal_service", "auditor", None]
READERS = {"tenant_admin", "farm_manager", "house_operator", "viewer"}
WRITERS = {"tenant_admin", "farm_manager"}
INTERNAL = {"internal_service"}


class Setting:
    """A fresh report with a pending re-export for each attempt that may change it."""

    def __init__(self, api, aws):
        self.api = api
        self.aws = aws

    def pending(self):
        report = put_succeeded_report(self.aws)
        response = self.api.call("POST", REEXPORTS, body={"report_id": report.id})
        assert response.status == 202
        return report, response.json

    def request(self, route, role):
        """(method, path, body) for one attempt at the route."""
        report, record = self.pending()
        if route == "create":
            return "POST", REEXPORTS, {"report_id": put_succeeded_report(self.aws).id}
        if route == "list":
            return "GET", REEXPORTS, None
        if route == "get":
            return "GET", f"{REEXPORTS}/{record['id']}", None
        if route == "cancel":
            return "DELETE", f"{REEXPORTS}/{record['id']}", None
        if route == "history":
            return "GET", f"{JOBS}/{report.id}/history", None
        key = "tenants/tenant-a/restored/file.csv"
        self.aws.s3.put_object(Bucket=self.aws.bucket, Key=key, Body=REPORT_BODY)
        new_file = {
            "key": key,
            "size_bytes": len(REPORT_BODY),
            "sha256": hashlib.sha256(REPORT_BODY).hexdigest(),
            "row_count": 1,
        }
        return "PUT", f"{REEXPORTS}/{record['id']}", {"expected_version": 1, "new_file": new_file}


ALLOWED = {
    "create": (WRITERS, 202),
    "list": (READERS, 200),
    "get": (READERS, 200),
    "cancel": (WRITERS, 200),
    "update": (INTERNAL, 200),
    "history": (READERS, 200),
}


@pytest.mark.parametrize("route", sorted(ALLOWED))
def test_role_matrix(api, aws, route):
    setting = Setting(api, aws)
    allowed, success = ALLOWED[route]
    outcomes = {}

    for role in ROLES:
        method, path, body = setting.request(route, role)
        response = api.invoke(
            http_event(method, path, claims=claims_for("tenant-a", f"[{role}]" if role else None, "u-1"), body=body)
        )
        outcomes[role] = (response.status, response.error_code if response.status >= 400 else None)

    assert outcomes == {role: (success, None) if role in allowed else (403, "FORBIDDEN") for role in ROLES}


@pytest.mark.parametrize("route", sorted(ALLOWED))
def test_no_token_is_401_and_a_token_without_tenant_is_401(api, aws, route):
    method, path, body = Setting(api, aws).request(route, None)

    anonymous = api.invoke(http_event(method, path, body=body))
    no_tenant = api.invoke(
        http_event(method, path, claims=claims_for(None, "[tenant_admin internal_service]"), body=body)
    )

    for response in (anonymous, no_tenant):
        assert (response.status, response.error_code) == (401, "UNAUTHORIZED")
