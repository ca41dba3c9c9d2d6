"""A re-export never stays active once its job has ended: the generator's fallbacks end both together,
and a record left over anyway (by an older fallback, or a lost race) is repaired by the next POST or DELETE."""

from __future__ import annotations

from botocore.exceptions import ClientError

from report_export.aws import clients
from report_export.core.history import SERVICE_ACTOR
from report_export.core.settings import get_settings
from report_export.jobs.ending import Cancelled, Guard, job_ending

from conftest import LambdaContextStub
from support.reexports import JOBS, REEXPORTS, generator_handler, history, put_succeeded_report, reexport_items
from support.tables import job_repository, reexport_repository, table
from support.worker import deliver_once


def request(api, report_id):
    response = api.call("POST", REEXPORTS, body={"report_id": report_id})
    assert response.status == 202, response.body
    return response.json


def end_job_alone(aws, job_id, status, **fields):
    """What the old fallbacks left: the job finished, its re-export record untouched and still active."""
    names = {"#status": "status", **{f"#{name}": name for name in fields}}
    values = {":status": {"S": status}, **{f":{name}": {"S": value} for name, value in fields.items()}}
    assignments = ", ".join(f"#{name} = :{name}" for name in ("status", *fields))
    aws.dynamodb.update_item(
        TableName=aws.table_name,
        Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{job_id}"}},
        UpdateExpression=f"SET {assignments}",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def test_without_the_state_machine_the_last_delivery_fails_the_reexport_with_its_job(api, aws, monkeypatch):
    report = put_succeeded_report(aws)
    requested = request(api, report.id)

    def step_functions_down(**kwargs):
        raise ConnectionError("states endpoint unreachable")

    monkeypatch.setattr(clients.stepfunctions(), "start_execution", step_functions_down)

    responses = [
        deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub(), visibility_timeout=0)
        for _ in range(3)
    ]

    assert [len(response["batchItemFailures"]) for response in responses] == [1, 1, 0]
    new_job = api.call("GET", f"{JOBS}/{requested['job_id']}").json
    assert (new_job["status"], new_job["error_code"]) == ("failed", "INTERNAL")
    record = api.call("GET", f"{REEXPORTS}/{requested['id']}").json
    assert (record["status"], record["error_code"], record["completed_at"] is not None) == ("failed", "INTERNAL", True)
    assert api.call("GET", f"{JOBS}/{report.id}").json["active_reexport_id"] is None
    [*_, completed] = history(api, report.id)
    assert (completed["event"], completed["details"]["outcome"]) == ("reexport_completed", "failed")
    assert api.call("POST", REEXPORTS, body={"report_id": report.id}).status == 202


def test_a_post_repairs_a_reexport_whose_job_failed_alone_and_starts_a_new_one(api, aws):
    report = put_succeeded_report(aws)
    stale = request(api, report.id)
    end_job_alone(aws, stale["job_id"], "failed", error_code="INTERNAL", error_message="gone")

    response = api.call("POST", REEXPORTS, body={"report_id": report.id})

    assert response.status == 202, response.body
    assert response.json["id"] != stale["id"]
    repaired = api.call("GET", f"{REEXPORTS}/{stale['id']}").json
    assert (repaired["status"], repaired["error_code"]) == ("failed", "INTERNAL")
    assert api.call("GET", f"{JOBS}/{report.id}").json["active_reexport_id"] == response.json["id"]
    statuses = sorted(item["status"] for item in reexport_items(aws))
    assert statuses == ["failed", "pending"]


def test_a_delete_repairs_a_reexport_whose_job_ended_alone(api, aws):
    report = put_succeeded_report(aws)
    cancelled = request(api, report.id)
    end_job_alone(aws, cancelled["job_id"], "cancelled")

    response = api.call("DELETE", f"{REEXPORTS}/{cancelled['id']}")

    assert (response.status, response.json["status"]) == (200, "cancelled")
    assert api.call("GET", f"{JOBS}/{report.id}").json["active_reexport_id"] is None
    failed = request(api, report.id)
    end_job_alone(aws, failed["job_id"], "failed", error_code="STORE_FAILED", error_message="x")

    response = api.call("DELETE", f"{REEXPORTS}/{failed['id']}")

    assert (response.status, response.error_code) == (409, "REEXPORT_NOT_CANCELLABLE")
    record = api.call("GET", f"{REEXPORTS}/{failed['id']}").json
    assert (record["status"], record["error_code"]) == ("failed", "STORE_FAILED")
    assert api.call("GET", f"{JOBS}/{report.id}").json["active_reexport_id"] is None


def test_a_cancel_whose_first_transaction_is_refused_still_ends_the_reexport(api, aws, monkeypatch):
    report = put_succeeded_report(aws)
    requested = request(api, report.id)
    jobs = job_repository()
    claimed = jobs.claim(
        "tenant-a", requested["job_id"], now="2030-01-01T00:00:00.000Z", lease_until="2030-01-01T00:10:00.000Z"
    )
    reexport_repository().mark_running("tenant-a", requested["id"], now="2030-01-01T00:00:00.000Z")
    client = clients.dynamodb()
    real_transact = client.transact_write_items
    refusals = {"left": 1}

    def conflicting_write_first(**kwargs):
        # DELETE's note of cancel_requested lands on the record at the same moment: the transaction is refused.
        if refusals["left"]:
            refusals["left"] -= 1
            error = {"Error": {"Code": "TransactionCanceledException", "Message": "TransactionConflict"}}
            raise ClientError(error, "TransactWriteItems")
        return real_transact(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", conflicting_write_first)

    ending = job_ending(get_settings(), table())
    assert ending.end(claimed, Cancelled(by=SERVICE_ACTOR), guard=Guard.ATTEMPT) is not None

    record = api.call("GET", f"{REEXPORTS}/{requested['id']}").json
    assert record["status"] == "cancelled"
    assert api.call("GET", f"{JOBS}/{requested['job_id']}").json["status"] == "cancelled"
    assert api.call("GET", f"{JOBS}/{report.id}").json["active_reexport_id"] is None


def test_a_post_releases_a_report_that_still_names_a_finished_reexport(api, aws):
    report = put_succeeded_report(aws)
    finished = request(api, report.id)
    api.call("DELETE", f"{REEXPORTS}/{finished['id']}")
    aws.dynamodb.update_item(  # as if the release had been lost
        TableName=aws.table_name,
        Key={"PK": {"S": "TENANT#tenant-a"}, "SK": {"S": f"JOB#{report.id}"}},
        UpdateExpression="SET active_reexport_id = :finished",
        ExpressionAttributeValues={":finished": {"S": finished["id"]}},
    )

    response = api.call("POST", REEXPORTS, body={"report_id": report.id})

    assert response.status == 202, response.body
    assert response.json["id"] != finished["id"]
