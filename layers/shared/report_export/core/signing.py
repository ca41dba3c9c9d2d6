"""HMAC signing with the service's secret.

Each use derives its own key from the secret and a purpose label, so a value signed for one
purpose (a pagination cursor) can never be replayed as another (a download token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

_SIGNATURE_BYTES = 16  # 128 bits: ample against forgery, short in a URL


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
