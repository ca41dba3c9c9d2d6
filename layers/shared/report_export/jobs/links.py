"""Signed download links (`…/file?token=`): they name one job of one tenant and expire.

A presigned S3 URL dies with the Lambda credentials that signed it, so a link meant to last
(an e-mail) carries this token instead, and each use mints a fresh presigned URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from report_export.core.errors import Forbidden, Unauthorized
from report_export.core.signing import Signer

# The purpose label of the key that signs these tokens (see core.signing).
DOWNLOAD_TOKEN_PURPOSE = "download-token"


class LinkExpired(Unauthorized):
    code = "LINK_EXPIRED"


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    tenant_id: str
    job_id: str
    expires_at: datetime


class DownloadTokens:
    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def issue(self, grant: DownloadGrant) -> str:
        return self._signer.seal(
            {"tenant": grant.tenant_id, "job": grant.job_id, "exp": int(grant.expires_at.timestamp())}
        )

    def verify(self, token: str, *, job_id: str, now: datetime) -> DownloadGrant:
        """The grant a token carries, if it is genuine, unexpired and names this job."""
        claims = self._signer.open(token)
        if claims is None:
            raise Unauthorized("This download link is not valid")
        try:
            expires = claims["exp"]
            if not isinstance(expires, int) or isinstance(expires, bool):
                raise TypeError("exp is not a whole number")
            grant = DownloadGrant(
                tenant_id=str(claims["tenant"]),
                job_id=str(claims["job"]),
                expires_at=datetime.fromtimestamp(expires, UTC),
            )
        except (ValueError, TypeError, KeyError, OverflowError, OSError):
            # Signed with the service's key and still not one of its links (a key shared with another tool,
            # an older format): refused like any other link that is not valid.
            raise Unauthorized("This download link is not valid") from None
        if grant.expires_at <= now:
            raise LinkExpired("This download link has expired; ask for a new one")
        if grant.job_id != job_id:
            raise Forbidden("This download link is for another report")
        return grant
