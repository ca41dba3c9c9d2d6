"""Who is calling: the principal from the API Gateway JWT authorizer's claims, and role checks."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from report_export.core.errors import Forbidden, Unauthorized
from report_export.core.models.common import ID_PATTERN, Role

COGNITO_GROUPS_CLAIM = "cognito:groups"
_TENANT_RE = re.compile(ID_PATTERN)
_SUBJECT_MAX_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    tenant_id: str
    roles: frozenset[str]


def parse_roles(raw: Any) -> frozenset[str]:
    """Roles as the authorizer hands them over.

    HTTP API JWT authorizers flatten array claims into a string such as "[tenant_admin viewer]";
    other issuers send a JSON array, a JSON string of one, or a comma separated list. Anything else
    is one role name as it stands.
    """
    if raw is None:
        return frozenset()
    if isinstance(raw, list | tuple):
        return frozenset(str(role).strip() for role in raw if str(role).strip())
    text = str(raw).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if isinstance(decoded, list):
            return parse_roles(decoded)
        # The authorizer's flattened array: its items are separated by spaces.
        return frozenset(part for part in re.split(r"[\s,]+", text[1:-1]) if part)
    # A plain string is one role, or a comma separated list: "viewer tenant_admin" is one (unknown) role,
    # never an admin hidden behind a space.
    return frozenset(part.strip() for part in text.split(",") if part.strip())


def principal_from_claims(claims: Mapping[str, Any] | None, *, tenant_claim: str, roles_claim: str) -> Principal:
    if not claims:
        raise Unauthorized("A valid bearer token is required")
    subject = str(claims.get("sub") or "").strip()
    tenant_id = str(claims.get(tenant_claim) or "").strip()
    if not subject or len(subject) > _SUBJECT_MAX_LENGTH:
        raise Unauthorized("The token has no subject")
    if not tenant_id:
        raise Unauthorized("The token carries no tenant")
    if not _TENANT_RE.match(tenant_id):
        raise Unauthorized("The token's tenant is not a valid id")
    roles_raw = claims.get(roles_claim)
    if roles_raw is None:
        roles_raw = claims.get(COGNITO_GROUPS_CLAIM)
    return Principal(subject=subject, tenant_id=tenant_id, roles=parse_roles(roles_raw))


def claims_from_event(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    return (authorizer.get("jwt") or {}).get("claims")


def authorize(event: Mapping[str, Any], allowed: Iterable[Role], *, tenant_claim: str, roles_claim: str) -> Principal:
    principal = principal_from_claims(claims_from_event(event), tenant_claim=tenant_claim, roles_claim=roles_claim)
    if principal.roles.isdisjoint(role.value for role in allowed):
        raise Forbidden("Your role does not allow this operation")
    return principal
