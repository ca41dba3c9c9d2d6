"""Development JWTs: a local RS256 key that signs tokens, and the checks API Gateway's JWT authorizer makes.

The key is created on first use and kept in .local/ (ignored by git), so tokens printed by one
command stay valid for a stack started by another, across restarts, until they expire.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.template import REPO_ROOT

DEFAULT_KEY_FILE = REPO_ROOT / ".local" / "dev-jwt-key.pem"
DEFAULT_TTL_SEC = 12 * 3600
ALGORITHM = "RS256"


class InvalidToken(Exception):
    """The token would be refused by the JWT authorizer; the message says why."""


def load_or_create_key(path: Path = DEFAULT_KEY_FILE) -> rsa.RSAPrivateKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Written aside and linked into place, so two commands starting at once agree on one key.
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        staging.write_bytes(pem)
        staging.chmod(0o600)
        try:
            os.link(staging, path)
        except FileExistsError:
            pass
        finally:
            staging.unlink()
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidToken(f"{path} does not hold an RSA private key")
    return key


def key_id(public_key: rsa.RSAPublicKey) -> str:
    """The RFC 7638 thumbprint, as JWKS endpoints commonly name their keys."""
    numbers = public_key.public_numbers()

    def b64(value: int) -> str:
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    canonical = json.dumps({"e": b64(numbers.e), "kty": "RSA", "n": b64(numbers.n)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class TokenSettings:
    """What the API expects of a token: issuer and audiences (the authorizer) and claim names (the code)."""

    issuer: str
    audiences: tuple[str, ...]
    tenant_claim: str = "tenant_id"
    roles_claim: str = "roles"


def mint(
    key: rsa.RSAPrivateKey,
    settings: TokenSettings,
    *,
    tenant: str,
    roles: Iterable[str],
    subject: str | None = None,
    ttl_sec: int = DEFAULT_TTL_SEC,
    now: float | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    issued = int(time.time() if now is None else now)
    roles = list(roles)
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "aud": settings.audiences[0],
        "sub": subject or f"dev-{roles[0] if roles else 'user'}",
        "iat": issued,
        "nbf": issued,
        "exp": issued + ttl_sec,
        settings.tenant_claim: tenant,
        settings.roles_claim: roles,
        **(extra_claims or {}),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": key_id(key.public_key())})


class JwtVerifier:
    """The checks of an HTTP API JWT authorizer: signature by a known key, RS256, iss, aud, exp, nbf."""

    def __init__(self, public_key: rsa.RSAPublicKey, settings: TokenSettings) -> None:
        self._public_key = public_key
        self._kid = key_id(public_key)
        self._settings = settings

    def claims(self, authorization: str | None) -> dict[str, Any]:
        if not authorization:
            raise InvalidToken("no token")
        # The authorizer takes the token with or without its "Bearer" scheme.
        token = re.sub(r"^bearer\s+", "", authorization.strip(), flags=re.IGNORECASE)
        try:
            header = jwt.get_unverified_header(token)
            if header.get("kid") != self._kid:
                raise InvalidToken("the token's kid names no key of the issuer")
            return jwt.decode(
                token,
                self._public_key,
                algorithms=[ALGORITHM],
                issuer=self._settings.issuer,
                audience=list(self._settings.audiences),
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from None


def authorizer_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as the JWT authorizer hands them to the integration: every value a string, arrays as "[a b]"."""
    flattened = {}
    for name, value in claims.items():
        if isinstance(value, list | tuple):
            flattened[name] = "[" + " ".join(str(item) for item in value) + "]"
        elif isinstance(value, bool):
            flattened[name] = "true" if value else "false"
        elif isinstance(value, dict):
            flattened[name] = json.dumps(value, separators=(",", ":"))
        else:
            flattened[name] = str(value)
    return flattened
