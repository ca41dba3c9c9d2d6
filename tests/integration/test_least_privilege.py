"""Each role allows the calls its function really makes (moto does not enforce IAM, so nothing else
would notice a missing action before AWS answered AccessDenied), and the check itself can fail."""

from __future__ import annotations

import copy

import pytest
from test_announce_again import unannounced_job
from test_reexports_repair import end_job_alone

from local.template import load_template
from report_export.aws import secrets
from report_export.sweeping.sweeper import sweeper

from conftest import LambdaContextStub
from support.aws_calls import GRANTED_UNUSED, recorded_calls, refused, unused_grants
from support.iam_requests import Authorisation, UnknownOperation, authorisations
from support.least_privilege import STATE_MACHINE, roles, template_roles
from support.reexports import JOBS, REEXPORTS, generator_handler, put_succeeded_report
from support.sweeping import make_the_announcement_due
from support.worker import deliver_once


def template_without(owner: str, action: str) -> dict:
    template = copy.deepcopy(load_template())
    for policy in template["Resources"][owner]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if isinstance(statement.get("Action"), list) and action in statement["Action"]:
                statement["Action"].remove(action)
    return template


def test_the_repair_transaction_needs_condition_check_item_and_the_api_role_grants_it(api, aws):
    report = put_succeeded_report(aws)
    stale = api.call("POST", REEXPORTS, body={"report_id": report.id}).json
    end_job_alone(aws, stale["job_id"], "failed", error_code="INTERNAL", error_message="gone")

    with recorded_calls() as calls:
        assert api.call("POST", REEXPORTS, body={"report_id": report.id}).status == 202

    checks = [request for caller, request in calls if request.action == "dynamodb:ConditionCheckItem"]
    assert checks and {caller for caller, _ in calls} == {"ApiFunction"}
    assert refused(calls, template_roles()) == []
    # The role as it was before ConditionCheckItem was granted: the same calls are refused.
    assert refused(calls, roles(template_without("ApiFunction", "dynamodb:ConditionCheckItem"))) == [
        "ApiFunction may not dynamodb:ConditionCheckItem on "
        "arn:aws:dynamodb:eu-west-1:123456789012:table/report-export-jobs"
    ]


def test_a_report_from_request_to_download_stays_within_every_role_it_crosses(api, aws):
    with recorded_calls() as calls:
        job = api.create_job().json
        while deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub()) is not None:
            pass
        aws.wait_for_executions()
        assert api.call("GET", f"{JOBS}/{job['id']}").json["status"] == "succeeded"
        assert api.call("GET", f"{JOBS}/{job['id']}/download").status == 200

    callers = {caller for caller, _ in calls}
    assert {"ApiFunction", "GeneratorFunction", STATE_MACHINE} <= callers
    assert refused(calls, template_roles()) == []
    # The store reaches the table through a transaction, authorised item by item.
    state_machine_actions = {request.action for caller, request in calls if caller == STATE_MACHINE}
    assert {"dynamodb:UpdateItem", "sns:Publish", "events:PutEvents"} <= state_machine_actions


def test_the_sweeper_reads_the_signing_key_for_the_link_it_announces_again(api, aws):
    job_id = unannounced_job(api, aws)
    make_the_announcement_due(aws, "tenant-a", job_id)
    # In one test process the generator's cold start already read the key; the sweeper's Lambda has its own.
    secrets.reset()

    with recorded_calls() as calls:
        assert sweeper().sweep().announced == 1
        aws.wait_for_executions()

    sweeper_calls = [(caller, request) for caller, request in calls if caller == "SweeperFunction"]
    assert any(request.action == "ssm:GetParameter" for _, request in sweeper_calls)
    assert refused(sweeper_calls, template_roles()) == []


def test_a_resource_outside_the_grant_is_refused_even_when_the_action_is_granted():
    api_role = template_roles()["ApiFunction"]
    other_table = Authorisation("dynamodb:GetItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/someone-else")
    own_table = Authorisation("dynamodb:GetItem", "arn:aws:dynamodb:eu-west-1:123456789012:table/report-export-jobs")
    outside_prefix = Authorisation("s3:GetObject", "arn:aws:s3:::report-export-reports/elsewhere/file.csv")
    inside_prefix = Authorisation("s3:GetObject", "arn:aws:s3:::report-export-reports/tenants/t/jobs/j/1/f.csv")

    assert (api_role.allows(own_table), api_role.allows(other_table)) == (True, False)
    assert (api_role.allows(inside_prefix), api_role.allows(outside_prefix)) == (True, False)


def test_passing_the_schedules_role_is_allowed_only_to_scheduler():
    api_role = template_roles()["ApiFunction"]
    role = "arn:aws:iam::123456789012:role/report-export-scheduler"
    to_scheduler = Authorisation("iam:PassRole", role, (("iam:PassedToService", "scheduler.amazonaws.com"),))
    to_lambda = Authorisation("iam:PassRole", role, (("iam:PassedToService", "lambda.amazonaws.com"),))

    assert (api_role.allows(to_scheduler), api_role.allows(to_lambda)) == (True, False)


def test_sam_policy_templates_are_checked_as_the_statements_they_expand_into():
    sweeper = template_roles()["SweeperFunction"]
    dead_letters = "arn:aws:sqs:eu-west-1:123456789012:report-generate-dlq"
    work_queue = "arn:aws:sqs:eu-west-1:123456789012:report-generate"

    # SQSPollerPolicy on the dead-letter queue, SQSSendMessagePolicy on the work queue, nothing more.
    assert sweeper.allows(Authorisation("sqs:ReceiveMessage", dead_letters))
    assert not sweeper.allows(Authorisation("sqs:ReceiveMessage", work_queue))
    assert sweeper.allows(Authorisation("sqs:SendMessage", work_queue))
    assert not sweeper.allows(Authorisation("sqs:SendMessage", dead_letters))


def test_a_grant_nobody_uses_is_reported_unless_its_reason_is_written_down():
    template = copy.deepcopy(load_template())
    template["Resources"]["SweeperFunction"]["Properties"]["Policies"].append(
        {
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::report-export-reports/*"}
            ]
        }
    )
    sweeper_calls = [
        (
            "SweeperFunction",
            Authorisation(
                "dynamodb:Query", "arn:aws:dynamodb:eu-west-1:123456789012:table/report-export-jobs/index/Unfinished"
            ),
        )
    ]

    unused = unused_grants(sweeper_calls, {"SweeperFunction": roles(template)["SweeperFunction"]})

    assert any("SweeperFunction is granted s3:GetObject" in line for line in unused)
    assert not any("dynamodb:Query" in line for line in unused)
    assert not any(
        f"granted {action} " in line
        for (owner, action) in GRANTED_UNUSED
        if owner == "SweeperFunction"
        for line in unused
    )


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        (
            "dynamodb",
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": "t"}}, {"ConditionCheck": {"TableName": "t"}}]},
            ["dynamodb:PutItem", "dynamodb:ConditionCheckItem"],
        ),
        ("s3", "HeadObject", {"Bucket": "b", "Key": "k"}, ["s3:GetObject"]),
        ("s3", "UploadPart", {"Bucket": "b", "Key": "k"}, ["s3:PutObject"]),
        (
            "s3",
            "CopyObject",
            {"Bucket": "b", "Key": "k", "CopySource": {"Bucket": "b", "Key": "k"}},
            ["s3:PutObject", "s3:GetObject"],
        ),
        ("s3", "ListMultipartUploads", {"Bucket": "b"}, ["s3:ListBucketMultipartUploads"]),
        ("s3", "DeleteObject", {"Bucket": "b", "Key": "k", "VersionId": "v"}, ["s3:DeleteObjectVersion"]),
        (
            "sqs",
            "DeleteMessageBatch",
            {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/123456789012/q"},
            ["sqs:DeleteMessage"],
        ),
        (
            "scheduler",
            "CreateSchedule",
            {"Name": "n", "GroupName": "g", "Target": {"RoleArn": "arn:r"}},
            ["scheduler:CreateSchedule", "iam:PassRole"],
        ),
    ],
)
def test_an_operation_is_authorised_as_the_actions_aws_checks_for_it(service, operation, params, expected):
    assert [request.action for request in authorisations(service, operation, params)] == expected


def test_an_operation_without_a_rule_is_reported_rather_than_let_through():
    with pytest.raises(UnknownOperation):
        authorisations("s3", "PutBucketPolicy", {"Bucket": "b"})
    with pytest.raises(UnknownOperation):
        authorisations("lambda", "Invoke", {})
