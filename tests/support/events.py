"""API Gateway HTTP API (payload v2) events, shaped as the JWT authorizer delivers them."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode


def claims_for(tenant: str | None = "tenant-a", roles: Any = "[tenant_admin]", sub: str = "user-1") -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": sub, "iss": "https://issuer.example", "aud": "report-export"}
    if tenant is not None:
        claims["tenant_id"] = tenant
    if roles is not None:
        claims["roles"] = roles
    return claims


def http_event(
    method: str,
    path: str,
    *,
    claims: dict[str, Any] | None = None,
    body: Any = None,
    query: dict[str, Any] | None = None,
    raw_body: str | None = None,
) -> dict[str, Any]:
    query = {name: str(value) for name, value in (query or {}).items() if value is not None}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": urlencode(query),
        "headers": {"content-type": "application/json", "host": "api.example.test"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.test",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
            "requestId": f"req-{uuid.uuid4()}",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "23/Nov/2026:09:00:00 +0000",
            "timeEpoch": 1795424400000,
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if raw_body is not None:
        event["body"] = raw_body
    elif body is not None:
        event["body"] = json.dumps(body)
    return event
