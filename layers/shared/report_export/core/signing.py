"""HMAC signing with the service's secret.

Each use derives its own key from the secret and a purpose label, so a value signed for one
purpose (a pagination cursor) can never be replayed as another (a download token).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from report_export.core.models.common import canonical_json

_SIGNATURE_BYTES = 16  # 128 bits: ample against forgery, short in a URL
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, secret: Callable[[], bytes], purpose: str) -> None:
        # The secret is read when first needed (and cached by its source), not at cold start.
        self._secret = secret
        self._purpose = purpose.encode()

    def _key(self) -> bytes:
        return hmac.new(self._secret(), self._purpose, hashlib.sha256).digest()

    def sign(self, payload: bytes) -> str:
        return b64url_encode(hmac.new(self._key(), payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES])

    def verify(self, payload: bytes, signature: str) -> bool:
        # compare_digest raises TypeError on non-ASCII text: a forged signature must be refused, not crash.
        if not signature.isascii():
            return False
        return hmac.compare_digest(self.sign(payload), signature)

    def seal(self, claims: Mapping[str, Any]) -> str:
        """A token of `claims`: their canonical JSON and its signature, both URL-safe."""
        payload = canonical_json(claims).encode()
        return f"{b64url_encode(payload)}.{self.sign(payload)}"

    def open(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this signer sealed; None for anything else (forged, tampered, not one).

        A token has exactly one spelling, the one seal() writes: strict base64url without padding and
        canonical JSON inside. base64 decoders skip what is not in their alphabet and tolerate padding,
        so a NUL, "==" or a comma slipped in would otherwise be the same grant under another text (and
        logged as another download)."""
        encoded, dot, signature = token.partition(".")
        if not dot or not _BASE64URL.fullmatch(encoded) or not _BASE64URL.fullmatch(signature):
            return None
        try:
            payload = b64url_decode(encoded)
        except (ValueError, binascii.Error):
            return None
        if b64url_encode(payload) != encoded or not self.verify(payload, signature):
            return None
        try:
            claims = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(claims, dict) or canonical_json(claims).encode() != payload:
            return None
        return claims
