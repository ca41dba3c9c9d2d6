"""A queued job becomes a report file: API → SQS → generator → S3 → state machine (run by moto).

The upstream is a real HTTP server on 127.0.0.1; every AWS call goes to moto in process.
"""

import csv
import gzip
import hashlib
import io
import json

import orjson
import pytest

from report_export.aws import clients
from report_export.aws.dynamo.codecs import stored_job
from report_export.core.models.common import JobStatus, JobType
from report_export.generation.generator import upstream_client
from report_export.reports import REPORT_DEFINITIONS, definition_for

from conftest import LambdaContextStub, take_over_before_the_store, valid_job_request
from support.worker import deliver_once

JOBS = "/api/v1/reports/jobs"


def generator_handler():
    from generator.handler import lambda_handler

    return lambda_handler


def run_worker(aws, *, visibility_timeout=0):
    """Deliver until the queue is empty, then let every store-and-notify execution finish."""
    responses = []
    while (
        response := deliver_once(
            aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub(), visibility_timeout=visibility_timeout
        )
    ) is not None:
        responses.append(response)
        if response.get("batchItemFailures") and visibility_timeout:
            break
    return responses, aws.wait_for_executions()


def stored_object(aws, job):
    obj = aws.s3.get_object(Bucket=aws.bucket, Key=job["file_path"])
    return obj, obj["Body"].read()


def csv_rows(body):
    return list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))


@pytest.mark.parametrize("job_type", [job_type.value for job_type in REPORT_DEFINITIONS])
def test_each_report_type_is_generated_stored_and_notified(api, aws, upstream, job_type):
    upstream.knobs.rows = 2345
    job_id = api.create_job(valid_job_request(job_type=job_type, filters=None)).json["id"]

    _, executions = run_worker(aws)

    assert [execution["status"] for execution in executions] == ["SUCCEEDED"]
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["progress_pct"], job["row_count"]) == ("succeeded", 100, 2345)
    obj, body = stored_object(aws, job)
    assert hashlib.sha256(body).hexdigest() == job["sha256"]
    assert len(body) == job["size_bytes"] == obj["ContentLength"]
    assert obj["ContentType"] == job["mime_type"] == "text/csv"
    assert obj["ContentDisposition"] == f'attachment; filename="{job["file_name"]}"'
    assert job["file_path"] == f"tenants/tenant-a/jobs/{job_id}/1/{job['file_name']}"
    definition = definition_for(JobType(job_type))
    rows = csv_rows(body)
    assert tuple(rows[0]) == definition.column_names
    assert len(rows) == 2346
    expected = upstream.expected_records(definition, upstream.requests[0].query)
    assert [row[0] for row in rows[1:]] == [record["id"] for record in expected]
    assert job["manifest"]["output"] == {
        "sha256": job["sha256"],
        "size_bytes": job["size_bytes"],
        "row_count": 2345,
        "mime_type": "text/csv",
    }
    assert job["manifest"]["definition"]["version"] == definition.version
    assert job["manifest"]["source_watermark"] == "wm-1"
    assert job["notification_sent_at"] is not None
    [notification] = aws.notifications()
    assert notification["MessageAttributes"]["status"]["Value"] == "succeeded"
    assert notification["MessageAttributes"]["tenant_id"]["Value"] == "tenant-a"
    assert notification["MessageAttributes"]["job_type"]["Value"] == job_type
    assert f"/api/v1/reports/jobs/{job_id}/file?token=" in notification["Message"]
    [event] = aws.events()
    assert event["detail-type"] == "Report Job Succeeded"
    assert event["detail"]["job_id"] == job_id and event["detail"]["sha256"] == job["sha256"]


def test_csv_values_are_exact_and_formula_cells_neutralised(api, aws, upstream):
    upstream.knobs.rows = 400
    job_id = api.create_job(valid_job_request(job_type="FEED_INTAKE_EXPORT")).json["id"]

    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{job_id}").json
    rows = csv_rows(stored_object(aws, job)[1])
    definition = definition_for(JobType.FEED_INTAKE_EXPORT)
    expected = upstream.expected_records(definition, upstream.requests[0].query)
    text_columns = [index for index, column in enumerate(definition.columns) if column.kind.value == "string"]
    neutralised = 0
    for row, record in zip(rows[1:], expected, strict=True):
        for index in text_columns:
            original = record[definition.columns[index].name]
            if original is None:
                assert row[index] == ""
            elif original[0] in "=+-@\t\r":
                assert row[index] == "'" + original
                neutralised += 1
            else:
                assert row[index] == original
        assert float(row[6]) == record["quantity_kg"]
    assert neutralised > 0, "the sample data should contain formula-like text"


def test_ndjson_has_one_object_per_line_with_keys_in_column_order(api, aws, upstream):
    upstream.knobs.rows = 30
    job_id = api.create_job(valid_job_request(job_type="TELEMETRY_EXPORT", format="json")).json["id"]

    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{job_id}").json
    obj, body = stored_object(aws, job)
    assert obj["ContentType"] == job["mime_type"] == "application/x-ndjson"
    assert job["file_name"].endswith(".ndjson")
    lines = body.decode().splitlines()
    assert len(lines) == 30
    definition = definition_for(JobType.TELEMETRY_EXPORT)
    assert all(tuple(orjson.loads(line)) == definition.column_names for line in lines)


def test_gzip_is_stored_as_application_gzip_without_content_encoding(api, aws, upstream):
    upstream.knobs.rows = 500
    job_id = api.create_job(valid_job_request(compression="gzip")).json["id"]

    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{job_id}").json
    obj, body = stored_object(aws, job)
    assert job["file_name"].endswith(".csv.gz")
    assert obj["ContentType"] == job["mime_type"] == "application/gzip"
    assert "ContentEncoding" not in obj
    assert hashlib.sha256(body).hexdigest() == job["sha256"]
    assert len(csv_rows(gzip.decompress(body))) == 501


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_two_runs_over_the_same_data_give_identical_files(api, aws, upstream, compression):
    upstream.knobs.rows = 1500
    first = api.create_job(valid_job_request(compression=compression)).json["id"]
    second = api.create_job(valid_job_request(compression=compression)).json["id"]

    run_worker(aws)

    hashes = {api.call("GET", f"{JOBS}/{job_id}").json["sha256"] for job_id in (first, second)}
    assert len(hashes) == 1


def test_changed_upstream_data_changes_the_file(api, aws, upstream):
    first = api.create_job().json["id"]
    run_worker(aws)
    upstream.knobs.data_version = 2
    second = api.create_job().json["id"]
    run_worker(aws)

    assert api.call("GET", f"{JOBS}/{first}").json["sha256"] != api.call("GET", f"{JOBS}/{second}").json["sha256"]


def test_upstream_503s_then_success(api, aws, upstream):
    upstream.knobs.failures = [(503, {}), (503, {})]
    job_id = api.create_job().json["id"]

    run_worker(aws)

    assert api.call("GET", f"{JOBS}/{job_id}").json["status"] == "succeeded"


@pytest.mark.reliability(
    scenario="Upstream failures",
    injected="an upstream answering 503 for good, a 400, a bad record at row 1,200, rows out of order at 1,500",
    checked="the job fails with a clear code; no file is left",
)
@pytest.mark.parametrize(
    ("knob", "value", "code"),
    [
        ("always_fail_with", 503, "UPSTREAM_UNAVAILABLE"),
        ("always_fail_with", 400, "UPSTREAM_REJECTED"),
        ("bad_record_at", 1200, "UPSTREAM_BAD_DATA"),
        ("out_of_order_at", 1500, "UPSTREAM_BAD_DATA"),
    ],
)
def test_upstream_failures_fail_the_job_with_a_code_and_leave_no_file(api, aws, upstream, knob, value, code):
    upstream.knobs.rows = 2500
    setattr(upstream.knobs, knob, value)
    job_id = api.create_job().json["id"]

    responses, executions = run_worker(aws)

    assert responses == [{"batchItemFailures": []}]
    assert [execution["status"] for execution in executions] == ["SUCCEEDED"]
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["error_code"]) == ("failed", code)
    assert job["error_message"]
    assert aws.s3.list_objects_v2(Bucket=aws.bucket).get("KeyCount", 0) == 0
    assert aws.s3.list_multipart_uploads(Bucket=aws.bucket).get("Uploads", []) == []
    [notification] = aws.notifications()
    assert notification["MessageAttributes"]["status"]["Value"] == "failed"
    assert code in notification["Message"]
    assert [event["detail-type"] for event in aws.events()] == ["Report Job Failed"]


@pytest.mark.reliability(
    scenario="The same message delivered twice",
    injected="a wake-up delivered again after its job ran",
    checked="one file, one succeeded transition, one notification",
)
def test_a_duplicate_delivery_makes_one_file_and_one_notification(api, aws):
    job_id = api.create_job().json["id"]
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps({"tenant_id": "tenant-a", "job_id": job_id}))

    responses, executions = run_worker(aws)

    assert all(response == {"batchItemFailures": []} for response in responses)
    assert len(executions) == 1
    assert aws.s3.list_objects_v2(Bucket=aws.bucket)["KeyCount"] == 1
    assert len(aws.notifications()) == 1


def test_a_wake_up_for_a_finished_or_cancelled_job_is_acknowledged_without_work(api, aws):
    job_id = api.create_job().json["id"]
    api.call("DELETE", f"{JOBS}/{job_id}")

    responses, executions = run_worker(aws)

    assert responses == [{"batchItemFailures": []}]
    assert executions == []
    assert api.call("GET", f"{JOBS}/{job_id}").json["status"] == "cancelled"


def test_a_cancel_while_running_stops_the_job_and_aborts_the_upload(api, aws, upstream, monkeypatch):
    upstream.knobs.rows = 5000
    job_id = api.create_job().json["id"]
    real_pages = upstream_client().pages

    def cancel_after_first_page(definition, job):
        for number, page in enumerate(real_pages(definition, job)):
            yield page
            if number == 0:
                assert api.call("DELETE", f"{JOBS}/{job_id}").status == 202

    monkeypatch.setattr(upstream_client(), "pages", cancel_after_first_page)

    run_worker(aws)

    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["cancel_requested"]) == ("cancelled", True)
    assert aws.s3.list_objects_v2(Bucket=aws.bucket).get("KeyCount", 0) == 0
    assert aws.s3.list_multipart_uploads(Bucket=aws.bucket).get("Uploads", []) == []
    assert aws.wait_for_executions() == []


def test_progress_rises_while_running_and_is_written_with_rows(api, aws, upstream, monkeypatch):
    upstream.knobs.rows = 4500
    job_id = api.create_job().json["id"]
    client = clients.dynamodb()
    real_update = client.update_item
    seen = []

    def record(**request):
        response = real_update(**request)
        updated = stored_job(response["Attributes"]).job
        if ":attempt" in request["ConditionExpression"] and updated.status is JobStatus.RUNNING:  # this attempt's
            seen.append((updated.progress_pct, updated.rows_written, updated.phase))
        return response

    monkeypatch.setattr(client, "update_item", record)

    run_worker(aws)

    percents = [percent for percent, _, _ in seen]
    assert percents == sorted(percents)
    assert all(percent < 100 for percent in percents)
    assert [rows for _, rows, phase in seen if phase == "fetching"] == [1000, 2000, 3000, 4000, 4500]
    assert seen[-1][2] == "storing"
    assert api.call("GET", f"{JOBS}/{job_id}").json["progress_pct"] == 100


def test_without_an_upstream_total_progress_is_an_estimate_below_100(api, aws, upstream, monkeypatch):
    upstream.knobs.rows = 30000
    upstream.knobs.report_total = False
    api.create_job()
    client = clients.dynamodb()
    real_update = client.update_item
    percents = []

    def record(**request):
        response = real_update(**request)
        updated = stored_job(response["Attributes"]).job
        if ":attempt" in request["ConditionExpression"] and updated.status is JobStatus.RUNNING:  # this attempt's
            percents.append(updated.progress_pct)
        return response

    monkeypatch.setattr(client, "update_item", record)

    run_worker(aws)

    fetching = percents[:-1]
    assert fetching == sorted(fetching) and max(fetching) <= 95 and len(set(fetching)) > 5


@pytest.mark.reliability(
    scenario="The store refused after the upload",
    injected="another attempt takes the job between the upload and the store",
    checked="the file is deleted; the job is not left running",
)
def test_a_store_failure_rolls_back_the_file(api, aws, monkeypatch):
    """Between upload and store another attempt takes the job over: the store step's condition
    fails, the state machine deletes the new object and the job never says succeeded."""
    job_id = api.create_job().json["id"]
    take_over_before_the_store(aws, monkeypatch, job_id)

    _, executions = run_worker(aws)

    assert [execution["status"] for execution in executions] == ["FAILED"]
    assert api.call("GET", f"{JOBS}/{job_id}").json["status"] != "succeeded"
    assert aws.s3.list_objects_v2(Bucket=aws.bucket).get("KeyCount", 0) == 0
    assert not any(event["detail-type"] == "Report Job Succeeded" for event in aws.events())


def test_one_bad_message_in_a_batch_is_the_only_one_retried(api, aws):
    job_id = api.create_job().json["id"]
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody="this is not a wake-up")

    response = deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub(), visibility_timeout=30)

    assert len(response["batchItemFailures"]) == 1
    [left] = aws.receive_all(aws.queue_url, visibility_timeout=0) or aws.sqs.receive_message(
        QueueUrl=aws.queue_url, VisibilityTimeout=0
    ).get("Messages", [{}])
    aws.wait_for_executions()
    assert api.call("GET", f"{JOBS}/{job_id}").json["status"] == "succeeded"


@pytest.mark.reliability(
    scenario="A message that is not a wake-up",
    injected="an unparseable body on the generation queue",
    checked="retried, then moved to the dead-letter queue",
)
def test_a_poison_message_ends_in_the_dead_letter_queue(aws):
    aws.sqs.send_message(QueueUrl=aws.queue_url, MessageBody='{"tenant_id": "x"}')

    for _ in range(5):
        deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub(), visibility_timeout=0)

    dead = aws.sqs.receive_message(QueueUrl=aws.dead_letter_queue_url).get("Messages", [])
    assert [message["Body"] for message in dead] == ['{"tenant_id": "x"}']


def test_an_unexpected_failure_releases_the_job_and_the_last_delivery_fails_it(api, aws, monkeypatch):
    job_id = api.create_job().json["id"]
    storage_down = {"s3": True}
    s3 = clients.s3()
    real_put = s3.put_object

    def storage_unreachable(**kwargs):
        if storage_down["s3"]:
            raise ConnectionError("storage unreachable")
        return real_put(**kwargs)

    monkeypatch.setattr(s3, "put_object", storage_unreachable)

    first = deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub(), visibility_timeout=0)
    after_first = api.call("GET", f"{JOBS}/{job_id}").json
    second = deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub(), visibility_timeout=0)
    third = deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub(), visibility_timeout=0)
    aws.wait_for_executions()

    assert len(first["batchItemFailures"]) == 1 and len(second["batchItemFailures"]) == 1
    assert after_first["status"] == "queued"
    assert third == {"batchItemFailures": []}
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["error_code"]) == ("failed", "INTERNAL")
    assert "storage unreachable" not in job["error_message"]


def test_a_failed_hand_over_to_the_state_machine_requeues_the_job_for_another_attempt(api, aws, monkeypatch):
    job_id = api.create_job().json["id"]
    sfn = clients.stepfunctions()
    real_start = sfn.start_execution
    outage = {"left": 1}

    def step_functions_down_once(**kwargs):
        if outage["left"]:
            outage["left"] -= 1
            raise ConnectionError("states endpoint unreachable")
        return real_start(**kwargs)

    monkeypatch.setattr(sfn, "start_execution", step_functions_down_once)

    first = deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub(), visibility_timeout=0)
    after_first = api.call("GET", f"{JOBS}/{job_id}").json
    second = deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub(), visibility_timeout=0)
    aws.wait_for_executions()

    assert len(first["batchItemFailures"]) == 1
    assert after_first["status"] == "queued"
    assert second == {"batchItemFailures": []}
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert job["status"] == "succeeded"
    assert f"/{job_id}/2/" in job["file_path"]  # the second attempt's file


def test_without_the_state_machine_the_last_delivery_still_ends_the_job_failed(api, aws, monkeypatch):
    job_id = api.create_job().json["id"]
    sfn = clients.stepfunctions()

    def step_functions_down(**kwargs):
        raise ConnectionError("states endpoint unreachable")

    monkeypatch.setattr(sfn, "start_execution", step_functions_down)

    responses = [
        deliver_once(aws.sqs, aws.queue_url, generator_handler(), LambdaContextStub(), visibility_timeout=0)
        for _ in range(3)
    ]

    assert [len(response["batchItemFailures"]) for response in responses] == [1, 1, 0]
    job = api.call("GET", f"{JOBS}/{job_id}").json
    assert (job["status"], job["error_code"]) == ("failed", "INTERNAL")
    assert "unreachable" not in job["error_message"]
