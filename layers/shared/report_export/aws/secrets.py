"""SecureString parameters from SSM, read once per cold start."""

from __future__ import annotations

from functools import cache

from report_export.aws import clients


@cache
def secure_parameter(name: str) -> str:
    return clients.ssm().get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def reset() -> None:
    secure_parameter.cache_clear()
