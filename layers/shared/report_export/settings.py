"""Configuration from the environment, validated once per cold start."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    generate_queue_url: str = Field(alias="GENERATE_QUEUE_URL", min_length=1)
    # SSM parameter (SecureString) holding the key that signs pagination cursors.
    signing_secret_parameter: str = Field(alias="SIGNING_SECRET_PARAMETER", min_length=1)
    tenant_claim: str = Field("tenant_id", alias="TENANT_CLAIM", min_length=1)
    roles_claim: str = Field("roles", alias="ROLES_CLAIM", min_length=1)
    max_period_days: int = Field(366, alias="MAX_PERIOD_DAYS", ge=1, le=3660)


@cache
def get_settings() -> Settings:
    return Settings.model_validate(os.environ)
