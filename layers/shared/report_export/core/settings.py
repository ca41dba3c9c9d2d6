"""Configuration from the environment, validated once per cold start."""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    table_name: str = Field(alias="TABLE_NAME", min_length=3)
    generate_queue_url: str = Field(alias="GENERATE_QUEUE_URL", min_length=1)
    # SSM parameter (SecureString) holding the key that signs pagination cursors and download links.
    signing_secret_parameter: str = Field(alias="SIGNING_SECRET_PARAMETER", min_length=1)
    tenant_claim: str = Field("tenant_id", alias="TENANT_CLAIM", min_length=1)
    roles_claim: str = Field("roles", alias="ROLES_CLAIM", min_length=1)
    max_period_days: int = Field(366, alias="MAX_PERIOD_DAYS", ge=1, le=3660)
    # Fairness between tenants: a tenant's jobs queued or running at once, and the Retry-After of a refusal.
    max_active_jobs_per_tenant: int = Field(100, alias="MAX_ACTIVE_JOBS_PER_TENANT", ge=1, le=1000)
    active_jobs_retry_after_seconds: int = Field(30, alias="ACTIVE_JOBS_RETRY_AFTER_SEC", ge=1, le=3600)
    # An internal service's re-export result is read whole within the API request that records it.
    reexport_result_max_bytes: int = Field(256 * 1024 * 1024, alias="REEXPORT_RESULT_MAX_BYTES", ge=1)

    reports_bucket: str = Field("", alias="REPORTS_BUCKET")
    # Presigned URLs are minted on every request and kept short (REPORT_DOWNLOAD_TTL_SEC).
    download_ttl_seconds: int = Field(900, alias="REPORT_DOWNLOAD_TTL_SEC", ge=60, le=43200)
    # The signed file?token= link in e-mails outlives presigned URLs; it still ends.
    link_ttl_seconds: int = Field(7 * 86400, alias="REPORT_LINK_TTL_SEC", ge=300, le=90 * 86400)
    retention_days: int = Field(90, alias="REPORT_RETENTION_DAYS", ge=1, le=3650)
    # A finished job's record (its parameters, file facts and manifest) outlives its file: what an audit
    # asks for years later, and what a re-export regenerates from. DynamoDB's TTL removes it after this.
    record_retention_days: int = Field(3650, alias="JOB_RECORD_RETENTION_DAYS", ge=30, le=36500)
    public_api_url: str = Field("", alias="PUBLIC_API_URL")

    state_machine_arn: str = Field("", alias="STATE_MACHINE_ARN")
    # Where a re-export's completion is announced when an internal service reports it (the state machine
    # announces what the pipeline produced itself).
    report_topic_arn: str = Field("", alias="REPORT_TOPIC_ARN")
    event_bus_name: str = Field("default", alias="EVENT_BUS_NAME", min_length=1)
    max_receive_count: int = Field(5, alias="MAX_RECEIVE_COUNT", ge=1)
    # Longer than the generator's timeout, so a live attempt is never taken over.
    lease_seconds: int = Field(960, alias="JOB_LEASE_SEC", ge=30)
    progress_interval_seconds: float = Field(2.0, alias="PROGRESS_INTERVAL_SEC", ge=0)
    # While the generator waits for an upstream page, how often it looks whether the job was cancelled.
    cancel_step_seconds: float = Field(1.0, alias="CANCEL_CHECK_SEC", ge=0.05, le=10)
    # The sweeper: attempts a job gets before an expired lease fails it, how long a queued job waits
    # unclaimed before its wake-up is sent again, how many jobs one sweep looks at per kind of work.
    max_attempts: int = Field(3, alias="MAX_ATTEMPTS", ge=1, le=20)
    sweep_queued_after_seconds: int = Field(300, alias="SWEEP_QUEUED_AFTER_SEC", ge=30)
    # A job released by a failed attempt has its message coming back after the queue's visibility timeout
    # (5400 s): it counts as lost only well after that.
    sweep_released_after_seconds: int = Field(5700, alias="SWEEP_RELEASED_AFTER_SEC", ge=60)
    sweep_page_size: int = Field(100, alias="SWEEP_PAGE_SIZE", ge=10, le=1000)
    # A job that ended without its announcement going out is announced again this long after it ended (and
    # after each try), at most so many times: longer than the state machine's own 300 s, so that an
    # execution still retrying is never doubled.
    sweep_unannounced_after_seconds: int = Field(900, alias="SWEEP_UNANNOUNCED_AFTER_SEC", ge=300)
    announce_attempts: int = Field(5, alias="ANNOUNCE_ATTEMPTS", ge=1, le=50)
    dead_letter_queue_url: str = Field("", alias="DEAD_LETTER_QUEUE_URL")
    # Tenants' schedules: the stage's EventBridge Scheduler group, what their firings invoke (and with which
    # role), where a firing Scheduler cannot deliver is kept, and how long a schedule change may stay
    # half-applied (record written, Scheduler not yet) before the sweeper completes it.
    schedule_group_name: str = Field("", alias="SCHEDULE_GROUP_NAME")
    scheduled_export_function_arn: str = Field("", alias="SCHEDULED_EXPORT_FUNCTION_ARN")
    scheduler_role_arn: str = Field("", alias="SCHEDULER_ROLE_ARN")
    schedule_dead_letter_arn: str = Field("", alias="SCHEDULE_DEAD_LETTER_ARN")
    max_schedules_per_tenant: int = Field(100, alias="MAX_SCHEDULES_PER_TENANT", ge=1, le=10000)
    # Each is an SNS subscription that sends a confirmation message when made: few, so that no tenant can
    # use the service to send mail to many addresses.
    max_subscriptions_per_tenant: int = Field(10, alias="MAX_SUBSCRIPTIONS_PER_TENANT", ge=1, le=100)
    schedule_sync_stale_after_seconds: int = Field(120, alias="SCHEDULE_SYNC_STALE_AFTER_SEC", ge=30)
    service_token_parameter: str = Field("", alias="INTERNAL_SERVICE_TOKEN_PARAMETER")
    upstream_max_attempts: int = Field(6, alias="UPSTREAM_MAX_ATTEMPTS", ge=1, le=20)
    upstream_backoff_base_seconds: float = Field(0.5, alias="UPSTREAM_BACKOFF_BASE_SEC", ge=0)
    upstream_max_wait_seconds: float = Field(45.0, alias="UPSTREAM_MAX_WAIT_SEC", ge=0)
    # Slices of a report's period read at once (report types that declare slicing); 1 reads one cursor.
    # Above 1 the upstream must answer a narrower period with exactly that period's records, which an
    # upstream filtering by the report's date does; the file's bytes are the same either way.
    source_concurrency: int = Field(1, alias="SOURCE_CONCURRENCY", ge=1, le=32)
    # How long one generator invocation reads pages before it saves a checkpoint and hands the rest of the
    # file to the next invocation (never more than 70% of the time the invocation has left); 0 hands over
    # after every page (tests).
    generation_leg_seconds: float = Field(600.0, alias="GENERATION_LEG_SEC", ge=0, le=900)
    # The most rows one report may have: at the generator's measured pace a report this large already takes
    # hours of invocations; one larger is refused at create (as estimated from the upstream's count) and
    # fails REPORT_TOO_LARGE if it grows past it while being written.
    max_report_rows: int = Field(1_000_000_000, alias="MAX_REPORT_ROWS", ge=1, le=10_000_000_000)
    feed_service_url: str = Field("", alias="FEED_SERVICE_URL")
    telemetry_service_url: str = Field("", alias="TELEMETRY_SERVICE_URL")
    weighvision_service_url: str = Field("", alias="WEIGHVISION_SERVICE_URL")
    activity_service_url: str = Field("", alias="ACTIVITY_SERVICE_URL")

    @property
    def upstream_urls(self) -> dict[str, str]:
        """Base URL per upstream service, as the report definitions name them."""
        urls = {
            "feed": self.feed_service_url,
            "telemetry": self.telemetry_service_url,
            "weighvision": self.weighvision_service_url,
            "activity": self.activity_service_url,
        }
        return {service: url for service, url in urls.items() if url}


@cache
def get_settings() -> Settings:
    return Settings.model_validate(os.environ)
