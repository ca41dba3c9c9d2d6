"""A tenant's notice subscriptions: an e-mail address or HTTPS endpoint that receives the tenant's report
notices (ready, failed), optionally only for some report types or outcomes."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from report_export.core.models.common import JobStatus, JobType, ServiceModel, Timestamp


class SubscriptionProtocol(StrEnum):
    EMAIL = "email"
    HTTPS = "https"


class SubscriptionState(StrEnum):
    # Being set up: the record is written, SNS has not answered yet (or the request that set it up stopped).
    SUBSCRIBING = "subscribing"
    # SNS sent a confirmation message (e-mail) or request (HTTPS); nothing is delivered until it is confirmed.
    PENDING_CONFIRMATION = "pending_confirmation"
    CONFIRMED = "confirmed"
    # Never confirmed, and SNS removed it (after three days): delete it and subscribe again.
    LAPSED = "lapsed"


class NoticeStatus(StrEnum):
    """The outcomes a notice announces."""

    SUCCEEDED = JobStatus.SUCCEEDED.value
    FAILED = JobStatus.FAILED.value


# Deliberately plain: one address, no display name, no comments; what SNS accepts and a person can read.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def _one_of_each(values: list | None) -> list | None:
    if values is None:
        return None
    if len(set(values)) != len(values):
        raise ValueError("must not name a value twice")
    return sorted(values)


class SubscriptionRequest(ServiceModel):
    """What a tenant admin subscribes: where notices go, and which of the tenant's notices."""

    model_config = ConfigDict(extra="forbid")

    protocol: SubscriptionProtocol
    endpoint: Annotated[str, StringConstraints(min_length=3, max_length=512)] = Field(
        description="An e-mail address (email), or an https:// URL without user name or password (https)",
        examples=["reports@farm.example"],
    )
    job_types: Annotated[list[JobType] | None, AfterValidator(_one_of_each)] = Field(
        None, min_length=1, description="Only notices of these report types (all when absent)"
    )
    statuses: Annotated[list[NoticeStatus] | None, AfterValidator(_one_of_each)] = Field(
        None, min_length=1, description="Only notices of these outcomes (both when absent)"
    )

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> SubscriptionRequest:
        # Printable ASCII only: a control character or noncharacter would reach SNS (and its XML), and an
        # international domain has an ASCII spelling (xn--...).
        if not all("!" <= character <= "~" for character in self.endpoint):
            raise ValueError("endpoint: only printable ASCII characters, no spaces (an IDN in its xn-- form)")
        if self.protocol is SubscriptionProtocol.EMAIL:
            local = self.endpoint.rpartition("@")[0]
            if not _EMAIL.fullmatch(self.endpoint) or local.startswith(".") or local.endswith(".") or ".." in local:
                raise ValueError("endpoint: an email subscription needs one plain e-mail address")
            return self
        try:
            parts = urlsplit(self.endpoint)
            parts.port  # noqa: B018 - a port that is not a number in range raises here
        except ValueError:
            raise ValueError("endpoint: the URL's host or port cannot be read (a port is a number to 65535)") from None
        if parts.scheme != "https" or not parts.hostname or parts.username is not None or parts.password is not None:
            raise ValueError("endpoint: an https subscription needs an https:// URL with a host and no credentials")
        return self

    @property
    def endpoint_identity(self) -> str:
        """The endpoint as told apart from others: spellings of one address or URL are one endpoint."""
        if self.protocol is SubscriptionProtocol.EMAIL:
            return self.endpoint.lower()
        parts = urlsplit(self.endpoint)
        host = (parts.hostname or "").rstrip(".")
        port = "" if parts.port in (None, 443) else f":{parts.port}"
        return urlunsplit(("https", f"{host}{port}", parts.path or "/", parts.query, ""))


class Subscription(SubscriptionRequest):
    """A tenant's subscription as the API shows it."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(examples=["019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f"])
    tenant_id: str
    state: SubscriptionState = Field(description="Whether SNS delivers to it yet")
    created_at: Timestamp
    created_by: str


class SubscriptionPage(ServiceModel):
    items: list[Subscription]
