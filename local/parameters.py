"""The values the local stack gives the template's parameters, and the tokens they imply.

A deploy is told its issuer, audience and upstream URLs (samconfig.toml); locally they are the
development issuer and the sample upstream. Kept apart from local.stack so that the token and
schedule commands start fast (no moto, no boto3).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from local.gateway import jwt_authorizers
from local.template import Template, load_template
from local.tokens import TokenSettings

DEFAULT_PORTS = {"api": 3000, "aws": 3001, "upstream": 3002}
LOCAL_ISSUER = "https://issuer.report-export.local"
LOCAL_AUDIENCE = "report-export-local"


def local_parameters(template_path: Path, upstream_url: str) -> dict[str, str]:
    """Values for the parameters a deploy must be given: the local issuer and audience, and the
    sample upstream for every *ServiceUrl left empty."""
    declared = load_template(template_path).get("Parameters", {})
    values = {}
    if "JwtIssuer" in declared:
        values["JwtIssuer"] = LOCAL_ISSUER
    if "JwtAudience" in declared:
        values["JwtAudience"] = LOCAL_AUDIENCE
    for name, declaration in declared.items():
        if name.endswith("ServiceUrl") and not declaration.get("Default"):
            values[name] = upstream_url
    return values


def token_settings(template: Template) -> TokenSettings:
    """Issuer and audiences of the template's (first) JWT authorizer, and the claims the API reads."""
    authorizers = jwt_authorizers(template)
    if not authorizers:
        return TokenSettings(LOCAL_ISSUER, (LOCAL_AUDIENCE,))
    config = next(iter(authorizers.values()))
    return TokenSettings(
        issuer=str(config["issuer"]),
        audiences=tuple(str(item) for item in config["audience"]),
        tenant_claim=str(template.parameters.get("TenantClaim", "tenant_id")),
        roles_claim=str(template.parameters.get("RolesClaim", "roles")),
    )


def read_template(
    path: Path,
    overrides: Mapping[str, str] | None = None,
    *,
    region: str = "eu-west-1",
    upstream_url: str = "http://127.0.0.1:0",  # commands that start no upstream need no real URL
) -> Template:
    """The template with the local values, then the developer's --param overrides."""
    return Template(path, parameters={**local_parameters(path, upstream_url), **(overrides or {})}, region=region)
