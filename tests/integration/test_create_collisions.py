"""A create whose transaction DynamoDB cancels (another transaction on the same key in flight, throttling)
is tried again, and answers either its job or a 503 that wrote nothing: never a 500, never a lost job."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from report_export.aws import clients
from report_export.aws.dynamo import jobs as job_repository_module

from conftest import valid_job_request

JOBS = "/api/v1/reports/jobs"


def cancel_job_transactions(monkeypatch, times: int) -> list[int]:
    """DynamoDB cancels the next `times` job-creating transactions as it does when another transaction on
    the same items is in flight (reason TransactionConflict)."""
    client = clients.dynamodb()
    real = client.transact_write_items
    cancelled: list[int] = []

    def conflicting(**request):
        if len(cancelled) < times and any("Put" in item for item in request["TransactItems"]):
            cancelled.append(1)
            error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
            reasons = [{"Code": "TransactionConflict"} for _ in request["TransactItems"]]
            raise ClientError({"Error": error, "CancellationReasons": reasons}, "TransactWriteItems")
        return real(**request)

    monkeypatch.setattr(client, "transact_write_items", conflicting)
    return cancelled


@pytest.mark.reliability(
    scenario="A create's transaction cancelled once",
    injected="DynamoDB's TransactionCanceledException (TransactionConflict) on the first try",
    checked="the create is tried again and answers 201 with one job",
)
@pytest.mark.parametrize("key", [None, "retry-key-1"])
def test_a_create_cancelled_once_by_a_conflict_is_tried_again_and_made(api, aws, monkeypatch, key):
    cancelled = cancel_job_transactions(monkeypatch, times=1)
    body = valid_job_request(**({"idempotency_key": key} if key else {}))

    response = api.call("POST", JOBS, body=body)

    assert cancelled == [1]
    assert response.status == 201, response.body
    assert len(aws.job_items("tenant-a")) == 1


@pytest.mark.reliability(
    scenario="A create's transaction cancelled every time",
    injected="TransactionCanceledException on every try",
    checked="503 with nothing written; the same request sent again makes one job",
)
def test_a_create_cancelled_every_time_is_a_503_that_wrote_nothing_and_can_be_sent_again(api, aws, monkeypatch):
    cancel_job_transactions(monkeypatch, times=job_repository_module._CREATE_ATTEMPTS)
    monkeypatch.setattr(job_repository_module, "_CREATE_BACKOFF_SECONDS", 0)
    body = valid_job_request(idempotency_key="retry-key-2")

    refused = api.call("POST", JOBS, body=body)
    again = api.call("POST", JOBS, body=body)

    assert (refused.status, refused.error_code) == (503, "SERVICE_UNAVAILABLE")
    assert again.status == 201, again.body
    assert [item["id"]["S"] for item in aws.job_items("tenant-a")] == [again.json["id"]]


@pytest.mark.reliability(
    scenario="20 concurrent creates, one key, two parameter sets",
    injected="two bodies under one idempotency key at once",
    checked="only 201, 200 or 409; exactly one job",
)
def test_concurrent_creates_with_one_key_and_two_parameter_sets_answer_201_200_or_409(api, serialized_aws):
    first = valid_job_request(idempotency_key="shared-key")
    second = valid_job_request(idempotency_key="shared-key", format="json")

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda n: api.call("POST", JOBS, body=first if n % 2 else second), range(20)))

    statuses = sorted({answer.status for answer in answers})
    assert set(statuses) <= {200, 201, 409}, [answer.body for answer in answers if answer.status >= 500]
    assert [answer.status for answer in answers].count(201) == 1
    assert len(serialized_aws.job_items("tenant-a")) == 1
