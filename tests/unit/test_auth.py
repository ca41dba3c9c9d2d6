import pytest

from report_export.core.auth import authorize, parse_roles, principal_from_claims
from report_export.core.errors import Forbidden, Unauthorized
from report_export.core.models.common import READER_ROLES, WRITER_ROLES


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("[tenant_admin viewer]", {"tenant_admin", "viewer"}),  # how the HTTP API authorizer flattens arrays
        ('["tenant_admin", "viewer"]', {"tenant_admin", "viewer"}),
        ("tenant_admin,viewer", {"tenant_admin", "viewer"}),
        ("tenant_admin", {"tenant_admin"}),
        ("viewer tenant_admin", {"viewer tenant_admin"}),  # one string is one role, not two
        ("viewer\ttenant_admin", {"viewer\ttenant_admin"}),
        ("[viewer", {"[viewer"}),
        ("viewer]", {"viewer]"}),
        (["farm_manager"], {"farm_manager"}),
        ("[]", set()),
        ("", set()),
        (None, set()),
    ],
)
def test_roles_are_read_in_every_shape_issuers_send(raw, expected):
    assert parse_roles(raw) == expected


def test_principal_comes_from_configured_claims():
    claims = {"sub": "user-9", "custom:tenant": "tenant-x", "groups": "[viewer]"}

    principal = principal_from_claims(claims, tenant_claim="custom:tenant", roles_claim="groups")

    assert (principal.subject, principal.tenant_id, principal.roles) == ("user-9", "tenant-x", {"viewer"})


def test_cognito_groups_are_roles_when_the_roles_claim_is_absent():
    claims = {"sub": "user-9", "tenant_id": "t1", "cognito:groups": "[farm_manager]"}

    principal = principal_from_claims(claims, tenant_claim="tenant_id", roles_claim="roles")

    assert principal.roles == {"farm_manager"}


@pytest.mark.parametrize(
    "claims",
    [
        None,
        {},
        {"tenant_id": "t1", "roles": "[viewer]"},
        {"sub": "u1", "roles": "[viewer]"},
        {"sub": "u1", "tenant_id": "   ", "roles": "[viewer]"},
        {"sub": "u1", "tenant_id": "../other", "roles": "[viewer]"},
    ],
)
def test_missing_subject_or_tenant_is_unauthorized(claims):
    with pytest.raises(Unauthorized):
        principal_from_claims(claims, tenant_claim="tenant_id", roles_claim="roles")


def test_a_reader_may_read_but_not_write():
    event = {"requestContext": {"authorizer": {"jwt": {"claims": {"sub": "u", "tenant_id": "t", "roles": "[viewer]"}}}}}

    assert authorize(event, READER_ROLES, tenant_claim="tenant_id", roles_claim="roles").tenant_id == "t"
    with pytest.raises(Forbidden):
        authorize(event, WRITER_ROLES, tenant_claim="tenant_id", roles_claim="roles")


def test_unknown_roles_grant_nothing():
    event = {"requestContext": {"authorizer": {"jwt": {"claims": {"sub": "u", "tenant_id": "t", "roles": "[admin]"}}}}}

    with pytest.raises(Forbidden):
        authorize(event, READER_ROLES, tenant_claim="tenant_id", roles_claim="roles")
