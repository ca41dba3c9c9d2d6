"""Opaque list cursors in the next_cursor query parameter: signed, and bound to the tenant and filters
of the query they came from. The domain pages by item id; only this edge turns ids into cursors."""

from __future__ import annotations

import hashlib
import re
from functools import cache

from report_export.aws.secrets import secret_source
from report_export.core.errors import InvalidCursor
from report_export.core.models.common import canonical_json
from report_export.core.settings import get_settings
from report_export.core.signing import Signer

_POSITION_RE = re.compile(r"^[0-9a-f-]{36}$")


def query_fingerprint(**binding: str | None) -> str:
    return hashlib.sha256(canonical_json(binding).encode()).hexdigest()[:32]


class CursorCodec:
    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def encode(self, *, after: str, fingerprint: str) -> str:
        return self._signer.seal({"after": after, "query": fingerprint})

    def decode(self, cursor: str, *, fingerprint: str) -> str:
        """The id of the last item of the previous page; InvalidCursor for anything else."""
        position = self._signer.open(cursor)
        if position is None:
            raise InvalidCursor("next_cursor is not a cursor this API issued")
        if position.get("query") != fingerprint:
            raise InvalidCursor("next_cursor belongs to a different query: keep the same filters while paging")
        after = position.get("after")
        if not isinstance(after, str) or not _POSITION_RE.match(after):
            raise InvalidCursor("next_cursor is not a cursor this API issued")
        return after


@cache
def cursor_codec() -> CursorCodec:
    settings = get_settings()
    return CursorCodec(Signer(secret_source(settings.signing_secret_parameter), purpose="list-cursor"))


def position_of(next_cursor: str | None, **binding: str | None) -> str | None:
    """The id to continue after, from a cursor this API issued for the same query (InvalidCursor otherwise)."""
    if next_cursor is None:
        return None
    return cursor_codec().decode(next_cursor, fingerprint=query_fingerprint(**binding))


def cursor_after(last_id: str | None, **binding: str | None) -> str | None:
    """The cursor of the next page, when one follows the item last_id."""
    if last_id is None:
        return None
    return cursor_codec().encode(after=last_id, fingerprint=query_fingerprint(**binding))
