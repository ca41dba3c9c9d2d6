"""SecureString parameters from SSM, read once per cold start."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from report_export.aws import clients


@cache
def secure_parameter(name: str) -> str:
    return clients.ssm().get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def secret_source(name: str) -> Callable[[], bytes]:
    """The parameter's value as key bytes, read on first use (what a Signer takes)."""
    return lambda: secure_parameter(name).encode()


def reset() -> None:
    secure_parameter.cache_clear()
