"""No AWS call outlasts the invocation: an attempt that could not be answered in the time left is not
sent, and the request answers 503 with nothing written instead of being cut off by the timeout."""

from __future__ import annotations

import pytest

from report_export.aws import clients
from report_export.aws.deadline import DeadlineReached, deadline

from conftest import LambdaContextStub, valid_job_request
from support.template import resource_properties

JOBS = "/api/v1/reports/jobs"


def test_an_attempt_that_could_outlast_the_invocation_is_not_sent(aws):
    client = clients.dynamodb()
    attempt = client.meta.config.connect_timeout + client.meta.config.read_timeout

    with deadline.of(LambdaContextStub(remaining_ms=int(attempt * 1000))), pytest.raises(DeadlineReached):
        client.describe_table(TableName=aws.table_name)
    with deadline.of(LambdaContextStub(remaining_ms=int((attempt + 2) * 1000))):
        assert client.describe_table(TableName=aws.table_name)["Table"]["TableName"] == aws.table_name
    # Outside an invocation that knows its time, nothing is refused.
    assert client.describe_table(TableName=aws.table_name)


@pytest.mark.reliability(
    scenario="Too little invocation time left",
    injected="an invocation with 3 s left, less than one AWS attempt may take",
    checked="503 before anything is sent; nothing written",
)
def test_a_create_with_too_little_time_left_is_a_503_that_wrote_nothing(api, aws):
    from support.events import claims_for, http_event

    claims = claims_for("tenant-a", "[tenant_admin]", "user-1")
    event = http_event("POST", JOBS, claims=claims, body=valid_job_request())

    response = api.invoke(event, remaining_ms=3_000)

    assert (response.status, response.error_code) == (503, "SERVICE_UNAVAILABLE")
    assert aws.job_items("tenant-a") == []
    assert api.invoke(event).status == 201


def test_the_api_functions_timeout_leaves_room_for_the_slowest_attempt_it_may_start():
    client = clients.dynamodb()
    attempt = client.meta.config.connect_timeout + client.meta.config.read_timeout
    api_function = resource_properties("ApiFunction")

    # A request's calls run one after another; the last one may start with attempt + margin left.
    assert api_function["Timeout"] >= 3 * attempt
    assert api_function["Timeout"] < 30  # API Gateway answers 503 itself after 30 s
