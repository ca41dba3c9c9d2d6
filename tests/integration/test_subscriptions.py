"""Tenant admins add and remove the endpoints that receive their tenant's report notices. Each is an SNS
subscription whose filter policy names the tenant, so a notice (and the link in it) stays in its tenant."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.sns.models import sns_backends

from report_export.aws import clients
from report_export.aws.dynamo import keys

from conftest import valid_job_request
from support.reexports import run_worker

SUBSCRIPTIONS = "/api/v1/reports/subscriptions"
TOPIC_NAME = "report-export"


def topic_arn() -> str:
    return boto3.client("sns").create_topic(Name=TOPIC_NAME)["TopicArn"]


def sns_subscriptions(protocol: str = "email") -> list[dict]:
    listed = boto3.client("sns").list_subscriptions_by_topic(TopicArn=topic_arn())["Subscriptions"]
    return [subscription for subscription in listed if subscription["Protocol"] == protocol]


def filter_of(endpoint: str) -> dict:
    sns = boto3.client("sns")
    [subscription] = [found for found in sns_subscriptions() if found["Endpoint"] == endpoint]
    attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
    assert attributes["FilterPolicyScope"] == "MessageAttributes"
    return json.loads(attributes["FilterPolicy"])


def stand_in_queue(aws, endpoint: str) -> str:
    """A queue that receives what `endpoint` receives: subscribed with the very filter policy SNS holds for it."""
    url = aws.sqs.create_queue(QueueName=f"stand-in-{abs(hash(endpoint))}")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(
        TopicArn=topic_arn(),
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps(filter_of(endpoint)), "FilterPolicyScope": "MessageAttributes"},
    )
    return url


def received(aws, queue_url: str) -> list[dict]:
    return [json.loads(message["Body"]) for message in aws.receive_all(queue_url)]


def subscribe(api, endpoint: str = "reports@farm.example", *, tenant: str = "tenant-a", **fields):
    return api.call("POST", SUBSCRIPTIONS, tenant=tenant, body={"protocol": "email", "endpoint": endpoint, **fields})


def stored_subscriptions(aws) -> list[dict]:
    """Subscription records and endpoint claims (a tenant's count of them may stay, at zero)."""
    items = aws.dynamodb.scan(TableName=aws.table_name)["Items"]
    return [
        item
        for item in items
        if item["SK"]["S"].startswith(keys.subscription_sk("")) or item["PK"]["S"] == keys.SUBSCRIPTION_ENDPOINT_PK
    ]


def test_an_admin_subscribes_an_address_and_sees_it_listed_with_its_state(api, aws):
    response = subscribe(api, job_types=["KPI_FEEDING_EXPORT", "FEED_INTAKE_EXPORT"], statuses=["failed"])

    assert response.status == 201, response.body
    created = response.json
    assert response.headers["location"] == f"{SUBSCRIPTIONS}/{created['id']}"
    assert (created["protocol"], created["endpoint"], created["tenant_id"]) == (
        "email",
        "reports@farm.example",
        "tenant-a",
    )
    assert created["state"] in ("pending_confirmation", "confirmed")
    assert (created["job_types"], created["statuses"], created["created_by"]) == (
        ["FEED_INTAKE_EXPORT", "KPI_FEEDING_EXPORT"],
        ["failed"],
        "user-1",
    )
    assert filter_of("reports@farm.example") == {
        "tenant_id": ["tenant-a"],
        "job_type": ["FEED_INTAKE_EXPORT", "KPI_FEEDING_EXPORT"],
        "status": ["failed"],
    }
    assert api.call("GET", SUBSCRIPTIONS).json["items"] == [created]
    assert api.call("GET", f"{SUBSCRIPTIONS}/{created['id']}").json == created


def test_a_notice_of_one_tenant_reaches_only_that_tenants_endpoints(api, aws):
    assert subscribe(api, "a@farm-a.example", tenant="tenant-a").status == 201
    assert subscribe(api, "b@farm-b.example", tenant="tenant-b").status == 201
    endpoint_a, endpoint_b = stand_in_queue(aws, "a@farm-a.example"), stand_in_queue(aws, "b@farm-b.example")

    api.create_job(tenant="tenant-a")
    api.create_job(valid_job_request(farm_id="018f1a84-bb0e-7d3f-b2e4-9e8b5f8e0003"), tenant="tenant-b")
    run_worker(aws)

    to_a, to_b = received(aws, endpoint_a), received(aws, endpoint_b)
    assert [notice["MessageAttributes"]["tenant_id"]["Value"] for notice in to_a] == ["tenant-a"]
    assert [notice["MessageAttributes"]["tenant_id"]["Value"] for notice in to_b] == ["tenant-b"]
    # What each receives is its own tenant's link.
    assert all("token=" in notice["Message"] for notice in to_a + to_b)
    assert to_a[0]["Message"] != to_b[0]["Message"]


def test_an_endpoint_gets_only_the_outcomes_and_types_it_asked_for(api, aws, upstream):
    assert subscribe(api, "failures@farm.example", statuses=["failed"]).status == 201
    assert subscribe(api, "telemetry@farm.example", job_types=["TELEMETRY_EXPORT"]).status == 201
    failures, telemetry = stand_in_queue(aws, "failures@farm.example"), stand_in_queue(aws, "telemetry@farm.example")

    api.create_job()
    run_worker(aws)
    upstream.knobs.always_fail_with = 400
    api.create_job(valid_job_request(start_date="2025-02-01", end_date="2025-02-28"))
    run_worker(aws)

    assert [notice["Subject"].split(":")[0] for notice in received(aws, failures)] == ["Report failed"]
    assert received(aws, telemetry) == []


@pytest.mark.parametrize(
    ("first", "second", "second_tenant"),
    [
        ("same@farm.example", "same@farm.example", "tenant-a"),
        ("same@farm.example", "same@farm.example", "tenant-b"),
        ("same@Farm.Example", "same@farm.example", "tenant-b"),
        ("Same@farm.example", "same@farm.example", "tenant-b"),
    ],
)
def test_an_endpoint_already_subscribed_is_refused_and_sns_keeps_its_one_subscription(
    api, aws, first, second, second_tenant
):
    assert subscribe(api, first).status == 201

    response = subscribe(api, second, tenant=second_tenant)

    assert (response.status, response.error_code) == (409, "ENDPOINT_ALREADY_SUBSCRIBED")
    assert second not in response.body and first not in response.body
    assert [found["Endpoint"] for found in sns_subscriptions()] == [first]
    assert filter_of(first)["tenant_id"] == ["tenant-a"]
    assert api.call("GET", SUBSCRIPTIONS, tenant=second_tenant).json["items"] == (
        [] if second_tenant == "tenant-b" else api.call("GET", SUBSCRIPTIONS).json["items"]
    )


def test_a_tenant_has_at_most_its_limit_of_subscriptions(api, aws, monkeypatch):
    monkeypatch.setenv("MAX_SUBSCRIPTIONS_PER_TENANT", "2")
    from conftest import _forget_cold_start_state

    _forget_cold_start_state()
    assert [subscribe(api, f"n{number}@farm.example").status for number in range(2)] == [201, 201]

    refused = subscribe(api, "n2@farm.example")

    assert (refused.status, refused.error_code) == (409, "TOO_MANY_SUBSCRIPTIONS")
    assert len(sns_subscriptions()) == 2
    # Another tenant's count is its own.
    assert subscribe(api, "other@farm.example", tenant="tenant-b").status == 201


@pytest.mark.reliability(
    scenario="8 concurrent subscriptions of one tenant with room for 2",
    injected="a burst of subscribe requests at the same moment",
    checked="exactly 2 × 201 and 6 × 409; 2 SNS subscriptions, 2 records",
)
def test_a_burst_of_subscriptions_stops_exactly_at_the_limit(api, serialized_aws, monkeypatch):
    monkeypatch.setenv("MAX_SUBSCRIPTIONS_PER_TENANT", "2")
    from conftest import _forget_cold_start_state

    _forget_cold_start_state()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda n: subscribe(api, f"burst{n}@farm.example").status, range(8)))

    assert sorted(statuses) == [201, 201] + [409] * 6
    assert len(sns_subscriptions()) == 2
    assert len(api.call("GET", SUBSCRIPTIONS).json["items"]) == 2


def test_removing_a_subscription_stops_its_notices_and_frees_its_endpoint(api, aws):
    created = subscribe(api).json
    queue = stand_in_queue(aws, "reports@farm.example")

    assert api.call("DELETE", f"{SUBSCRIPTIONS}/{created['id']}").status == 204

    assert sns_subscriptions() == []
    assert api.call("GET", SUBSCRIPTIONS).json["items"] == []
    assert api.call("DELETE", f"{SUBSCRIPTIONS}/{created['id']}").error_code == "NOT_FOUND"
    assert stored_subscriptions(aws) == []
    again = subscribe(api, tenant="tenant-b")
    assert again.status == 201, again.body
    del queue


def test_another_tenants_subscription_is_not_found(api, aws):
    created = subscribe(api).json

    for method in ("GET", "DELETE"):
        response = api.call(method, f"{SUBSCRIPTIONS}/{created['id']}", tenant="tenant-b")
        assert (response.status, response.error_code) == (404, "NOT_FOUND")
    assert len(sns_subscriptions()) == 1


@pytest.mark.parametrize("roles", ["[farm_manager]", "[viewer]", "[house_operator]", "[internal_service]"])
def test_only_a_tenant_admin_manages_subscriptions(api, aws, roles):
    created = subscribe(api).json

    calls = [
        ("POST", SUBSCRIPTIONS, {"protocol": "email", "endpoint": "x@farm.example"}),
        ("GET", SUBSCRIPTIONS, None),
        ("GET", f"{SUBSCRIPTIONS}/{created['id']}", None),
        ("DELETE", f"{SUBSCRIPTIONS}/{created['id']}", None),
    ]
    for method, path, body in calls:
        response = api.call(method, path, roles=roles, body=body)
        assert (response.status, response.error_code) == (403, "FORBIDDEN"), (method, path)
    assert len(sns_subscriptions()) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"protocol": "email", "endpoint": "not-an-address"},
        {"protocol": "email", "endpoint": "Name <a@farm.example>"},
        {"protocol": "email", "endpoint": "a@farm.example, b@farm.example"},
        {"protocol": "email", "endpoint": "a@localhost"},
        {"protocol": "https", "endpoint": "http://hooks.farm.example/notices"},
        {"protocol": "https", "endpoint": "https://user:secret@hooks.farm.example/notices"},
        {"protocol": "https", "endpoint": "https:///no-host"},
        {"protocol": "https", "endpoint": "https://hooks.farm.example/a b"},
        *(
            {"protocol": "https", "endpoint": f"https://hooks.farm.example/x{character}"}
            for character in ("\x00", "\x01", "\x1b[31m", "\x7f", "\ufffe", "\uffff", "\u202e", "\u00e9")
        ),
        {"protocol": "https", "endpoint": "https://hooks.farm.example:99999/x"},
        {"protocol": "https", "endpoint": "https://hooks.farm.example:abc/x"},
        {"protocol": "https", "endpoint": "https://[::1/x"},
        {"protocol": "email", "endpoint": "a@farm.example\n"},
        {"protocol": "email", "endpoint": "a..b@farm.example"},
        {"protocol": "email", "endpoint": ".a@farm.example"},
        {"protocol": "email", "endpoint": "a.@farm.example"},
        {"protocol": "email", "endpoint": "a\u0000@farm.example"},
        {"protocol": "sqs", "endpoint": "arn:aws:sqs:eu-west-1:123456789012:mine"},
        {"protocol": "lambda", "endpoint": "arn:aws:lambda:eu-west-1:123456789012:function:mine"},
        {"protocol": "email", "endpoint": "a@farm.example", "job_types": []},
        {"protocol": "email", "endpoint": "a@farm.example", "job_types": ["KPI_FEEDING_EXPORT", "KPI_FEEDING_EXPORT"]},
        {"protocol": "email", "endpoint": "a@farm.example", "statuses": ["cancelled"]},
        {"protocol": "email", "endpoint": "a@farm.example", "tenant_id": "tenant-b"},
        {"protocol": "email"},
        {"endpoint": "a@farm.example"},
    ],
)
def test_a_subscription_that_cannot_be_made_is_refused_before_anything_is_written(api, aws, body):
    response = api.call("POST", SUBSCRIPTIONS, body=body)

    assert (response.status, response.error_code) == (400, "VALIDATION_ERROR"), response.body
    assert sns_subscriptions() == [] and sns_subscriptions("https") == []
    assert stored_subscriptions(aws) == []


def test_an_https_endpoint_is_subscribed_with_the_same_tenant_filter(api, aws):
    response = api.call(
        "POST", SUBSCRIPTIONS, body={"protocol": "https", "endpoint": "https://hooks.farm.example/notices?k=1"}
    )

    assert response.status == 201, response.body
    [found] = sns_subscriptions("https")
    attributes = boto3.client("sns").get_subscription_attributes(SubscriptionArn=found["SubscriptionArn"])
    assert json.loads(attributes["Attributes"]["FilterPolicy"]) == {"tenant_id": ["tenant-a"]}


def refuse(operation: str, code: str, status: int = 400):
    def refused(**_):
        raise ClientError(
            {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}}, operation
        )

    return refused


@pytest.mark.parametrize(
    ("code", "status", "answered"),
    [("InvalidParameter", 400, (400, "VALIDATION_ERROR")), ("Throttled", 503, (503, "SERVICE_UNAVAILABLE"))],
)
@pytest.mark.reliability(
    scenario="SNS refuses or throttles a subscribe",
    injected="Subscribe answers InvalidParameter, or Throttled (503)",
    checked="400 or 503 in the envelope; no record, claim or count left; the same subscribe then works",
)
def test_when_sns_refuses_the_subscription_no_record_or_claim_is_left(api, aws, monkeypatch, code, status, answered):
    monkeypatch.setattr(clients.sns(), "subscribe", refuse("Subscribe", code, status))

    response = subscribe(api)

    assert (response.status, response.error_code) == answered
    assert stored_subscriptions(aws) == []
    assert api.call("GET", SUBSCRIPTIONS).json["items"] == []
    monkeypatch.undo()
    assert subscribe(api).status == 201  # the endpoint and the count were given back


def test_when_the_arn_cannot_be_recorded_the_sns_subscription_is_removed_again(api, aws, monkeypatch):
    from report_export.aws.dynamo.subscriptions import SubscriptionRepository

    def table_down(*_args, **_kwargs):
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, "UpdateItem")

    monkeypatch.setattr(SubscriptionRepository, "record_arn", table_down)

    response = subscribe(api)

    assert (response.status, response.error_code) == (503, "SERVICE_UNAVAILABLE")
    assert sns_subscriptions() == []
    assert stored_subscriptions(aws) == []


def test_a_subscription_whose_request_stopped_before_its_arn_was_noted_is_still_removed(api, aws, monkeypatch):
    from report_export.aws.dynamo.subscriptions import SubscriptionRepository

    # The function stops right after SNS answered: the record has no ARN, SNS has the subscription.
    monkeypatch.setattr(SubscriptionRepository, "record_arn", lambda *_args, **_kwargs: None)
    monkeypatch.setattr(
        clients.sns(), "get_subscription_attributes", refuse("GetSubscriptionAttributes", "NotFound", 404)
    )
    created = subscribe(api).json
    monkeypatch.undo()
    [listed] = api.call("GET", SUBSCRIPTIONS).json["items"]
    assert listed["state"] == "subscribing" and len(sns_subscriptions()) == 1

    assert api.call("DELETE", f"{SUBSCRIPTIONS}/{created['id']}").status == 204

    assert sns_subscriptions() == []
    assert stored_subscriptions(aws) == []


def test_the_state_shown_is_what_sns_says_now(api, aws):
    created = subscribe(api).json
    [found] = sns_subscriptions()
    subscription = sns_backends["123456789012"]["eu-west-1"].subscriptions[found["SubscriptionArn"]]

    subscription.attributes["PendingConfirmation"] = "true"
    assert api.call("GET", f"{SUBSCRIPTIONS}/{created['id']}").json["state"] == "pending_confirmation"
    subscription.attributes["PendingConfirmation"] = "false"
    assert api.call("GET", f"{SUBSCRIPTIONS}/{created['id']}").json["state"] == "confirmed"
    # Never confirmed, SNS removed it after three days.
    boto3.client("sns").unsubscribe(SubscriptionArn=found["SubscriptionArn"])
    assert api.call("GET", SUBSCRIPTIONS).json["items"][0]["state"] == "lapsed"
    assert api.call("DELETE", f"{SUBSCRIPTIONS}/{created['id']}").status == 204
    assert api.call("GET", SUBSCRIPTIONS).json["items"] == []


def test_a_subscription_made_is_answered_201_even_when_its_state_cannot_be_read(api, aws, monkeypatch):
    monkeypatch.setattr(
        clients.sns(), "get_subscription_attributes", refuse("GetSubscriptionAttributes", "Throttled", 503)
    )

    response = subscribe(api)

    assert response.status == 201, response.body
    assert response.json["state"] == "pending_confirmation"
    assert len(sns_subscriptions()) == 1


@pytest.mark.parametrize(
    "spelling",
    [
        "https://Hooks.Example/shared",
        "https://hooks.example./shared",
        "https://hooks.example:443/shared",
        "https://HOOKS.example/shared#part",
    ],
)
def test_another_spelling_of_a_subscribed_url_is_the_same_endpoint(api, aws, spelling):
    first = {"protocol": "https", "endpoint": "https://hooks.example/shared"}
    assert api.call("POST", SUBSCRIPTIONS, body=first).status == 201

    response = api.call("POST", SUBSCRIPTIONS, tenant="tenant-b", body={"protocol": "https", "endpoint": spelling})

    assert (response.status, response.error_code) == (409, "ENDPOINT_ALREADY_SUBSCRIBED")
    assert len(sns_subscriptions("https")) == 1


def test_deletes_of_one_subscription_at_the_same_moment_answer_204_once_and_404_after(api, serialized_aws):
    created = subscribe(api).json
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: api.call("DELETE", f"{SUBSCRIPTIONS}/{created['id']}").status, range(8)))

    assert sorted(statuses) == [204] + [404] * 7
    assert sns_subscriptions() == [] and stored_subscriptions(serialized_aws) == []
    assert subscribe(api).status == 201
