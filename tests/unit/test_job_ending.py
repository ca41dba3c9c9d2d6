"""The one module that ends jobs, as plans: which items each outcome becomes, under each guard, with and
without a re-export. Nothing here is sent anywhere (the integration tests apply the plans to the table)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from report_export.aws.dynamo.codecs import StoredJob, StoredReexport
from report_export.aws.dynamo.reexports import ReexportRepository
from report_export.aws.dynamo.table import Table
from report_export.core.history import SERVICE_ACTOR
from report_export.core.models.common import FileReference, JobStatus, JobType, format_timestamp
from report_export.core.models.jobs import Job
from report_export.core.models.reexports import ComparisonSummary, Reexport, ReexportStatus
from report_export.jobs.ending import (
    Cancelled,
    Failed,
    Guard,
    JobEnding,
    Succeeded,
    Superseded,
)
from report_export.jobs.outcomes import ending_status, outcome_of

TABLE = "jobs"
MOMENT = datetime(2025, 2, 1, 10, 0, tzinfo=UTC)
JOB_ID = "01950000-0000-7000-8000-000000000001"
REPORT_ID = "01950000-0000-7000-8000-000000000002"
REEXPORT_ID = "01950000-0000-7000-8000-000000000003"
ORIGINAL = FileReference(key="tenants/t/jobs/r/1/a.csv", size_bytes=10, sha256="a" * 64, row_count=1)
SAME = FileReference(key="tenants/t/jobs/j/1/a.csv", mime_type="text/csv", size_bytes=10, sha256="a" * 64, row_count=1)
OTHER = FileReference(key="tenants/t/jobs/j/1/b.csv", mime_type="text/csv", size_bytes=12, sha256="b" * 64, row_count=2)
MANIFEST = {"parameters_sha256": "p", "definition": {"version": 1}, "source_watermark": "w1"}


def stored_job(status: JobStatus = JobStatus.RUNNING, *, reexport: bool = False, **fields) -> StoredJob:
    job = Job(
        id=JOB_ID,
        tenant_id="t",
        requested_by="user-1",
        job_type=JobType.FEED_INTAKE_EXPORT,
        format="csv",
        status=status,
        reexport_id=REEXPORT_ID if reexport else None,
        reexport_of=REPORT_ID if reexport else None,
        created_at=MOMENT,
        updated_at=MOMENT,
        **fields,
    )
    return StoredJob(job=job, version=7, attempt=2)


def stored_reexport(status: ReexportStatus = ReexportStatus.RUNNING) -> StoredReexport:
    record = Reexport(
        id=REEXPORT_ID,
        tenant_id="t",
        report_id=REPORT_ID,
        job_id=JOB_ID,
        status=status,
        requested_by="auditor-1",
        reason="audit",
        original_parameters={"job_type": "FEED_INTAKE_EXPORT", "format": "csv"},
        effective_parameters={"job_type": "FEED_INTAKE_EXPORT", "format": "csv"},
        original_file=ORIGINAL,
        created_at=MOMENT,
        updated_at=MOMENT,
        version=4,
    )
    return StoredReexport(record=record, original_manifest=MANIFEST)


class CountingComparer:
    """Stands in for the row comparison, which reads both files from S3 (tested on its own)."""

    def __init__(self) -> None:
        self.calls = 0

    def compare(self, record, job, new_file) -> ComparisonSummary:
        self.calls += 1
        return ComparisonSummary(compared=True, unchanged=1, changed=1, only_in_original=0, only_in_new=0)


def ending(comparer=None) -> JobEnding:
    # No client: a plan given its re-export (or for a job without one) reads nothing.
    table = Table(None, TABLE)
    return JobEnding(table, ReexportRepository(table), record_retention_days=3650, comparer=comparer)


def job_update(items):
    [first, *_] = items
    return first["Update"]


def assert_leaves_active_jobs(plan) -> None:
    """The job's second item takes it out of its tenant's active jobs, whatever the outcome."""
    leave = plan.job_items[1]["Update"]
    assert leave["Key"] == {"PK": {"S": "TENANT#t"}, "SK": {"S": "ACTIVE_JOBS"}}
    assert leave["UpdateExpression"] == "DELETE #active :jobs"
    assert leave["ExpressionAttributeValues"][":jobs"] == {"SS": [JOB_ID]}
    assert "ConditionExpression" not in leave


def values_of(update) -> dict:
    names = update["ExpressionAttributeNames"]
    values = update["ExpressionAttributeValues"]
    assignments = re.findall(r"(#a\d+) = (:v\d+)", update["UpdateExpression"])
    return {names[name]: values[value] for name, value in assignments}


SUCCEEDED = Succeeded(SAME, MANIFEST, datetime(2025, 5, 1, tzinfo=UTC))
SUPERSEDED = Superseded(OTHER, by="svc-1", expires_at=datetime(2025, 6, 1, 8, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("outcome", "status"),
    [(SUCCEEDED, "succeeded"), (Failed("NO_DATA", "nothing"), "failed"), (Cancelled(by="user-9"), "cancelled")],
)
def test_a_job_without_a_reexport_ends_in_one_update_under_its_attempt(outcome, status):
    plan = ending().plan(stored_job(), outcome, guard=Guard.ATTEMPT)

    assert plan.record is None
    update = job_update(plan.items)
    assert (len(plan.job_items), plan.record_items) == (2, [])
    assert_leaves_active_jobs(plan)
    assert update["TableName"] == TABLE
    assert update["ConditionExpression"] == "#status = :running AND #attempt = :attempt"
    assert update["ExpressionAttributeValues"][":attempt"] == {"N": "2"}
    changed = values_of(update)
    assert changed["status"] == {"S": status}
    assert changed["GSI1PK"] == {"S": f"TENANT#t#STATUS#{status}"}
    assert "REMOVE" in update["UpdateExpression"]  # the lease goes with the attempt


def test_a_success_records_the_file_the_manifest_and_the_expiry():
    changed = values_of(job_update(ending().plan(stored_job(), SUCCEEDED, guard=Guard.ATTEMPT).items))

    assert changed["file_path"] == {"S": SAME.key}
    assert changed["sha256"] == {"S": SAME.sha256}
    assert (changed["size_bytes"], changed["row_count"], changed["progress_pct"]) == (
        {"N": "10"},
        {"N": "1"},
        {"N": "100"},
    )
    assert changed["expires_at"] == {"S": "2025-05-01T00:00:00.000Z"}
    assert '"parameters_sha256":"p"' in changed["manifest_json"]["S"]


def test_a_failure_records_its_code_and_message():
    changed = values_of(
        job_update(ending().plan(stored_job(), Failed("NO_DATA", "nothing"), guard=Guard.ATTEMPT).items)
    )

    assert (changed["error_code"], changed["error_message"]) == ({"S": "NO_DATA"}, {"S": "nothing"})


@pytest.mark.parametrize(
    ("guard", "condition"),
    [
        (Guard.VERSION, "#version = :expected_version AND #status = :expected_status"),
        (Guard.RUNNING, "#status = :running"),
    ],
)
def test_each_guard_conditions_the_job_update(guard, condition):
    update = job_update(ending().plan(stored_job(JobStatus.QUEUED), Cancelled(by="u"), guard=guard).items)

    assert update["ConditionExpression"] == condition


def test_the_version_guard_holds_the_job_to_the_version_and_status_read():
    update = job_update(ending().plan(stored_job(JobStatus.QUEUED), Cancelled(by="u"), guard=Guard.VERSION).items)

    values = update["ExpressionAttributeValues"]
    assert (values[":expected_version"], values[":expected_status"]) == ({"N": "7"}, {"S": "queued"})


def test_a_job_that_already_ended_is_only_checked_not_changed():
    plan = ending().plan(
        stored_job(JobStatus.FAILED, reexport=True), Failed("X", "y"), guard=Guard.ENDED, reexport=stored_reexport()
    )

    check = plan.items[0]["ConditionCheck"]
    assert check["ConditionExpression"] == "#status = :read"
    assert check["ExpressionAttributeValues"] == {":read": {"S": "failed"}}


@pytest.mark.parametrize(
    ("outcome", "record_status", "event"),
    [
        (SUCCEEDED, "succeeded", "reexport_completed"),
        (Failed("NO_DATA", "nothing"), "failed", "reexport_completed"),
        (Cancelled(by=SERVICE_ACTOR), "cancelled", "reexport_cancelled"),
        (SUPERSEDED, "succeeded", "reexport_completed"),
    ],
)
def test_a_job_that_regenerates_a_report_ends_its_reexport_releases_the_original_and_writes_history(
    outcome, record_status, event
):
    plan = ending().plan(stored_job(reexport=True), outcome, guard=Guard.ATTEMPT, reexport=stored_reexport())

    assert [kind for item in plan.items for kind in item] == ["Update", "Update", "Update", "Update", "Put"]
    assert_leaves_active_jobs(plan)
    record_update, release, history = (
        plan.record_items[0]["Update"],
        plan.record_items[1]["Update"],
        plan.record_items[2]["Put"],
    )
    assert record_update["Key"]["SK"] == {"S": f"REEXPORT#{REEXPORT_ID}"}
    assert record_update["ConditionExpression"] == "#status IN (:pending, :running)"
    assert values_of(record_update)["status"] == {"S": record_status}
    assert release["Key"]["SK"] == {"S": f"JOB#{REPORT_ID}"}
    assert "REMOVE" in release["UpdateExpression"]
    assert release["ExpressionAttributeValues"][":reexport"] == {"S": REEXPORT_ID}
    assert history["Item"]["SK"]["S"].startswith(f"HISTORY#{REPORT_ID}#")
    assert history["Item"]["event"] == {"S": event}
    assert plan.record is not None and plan.record.status.value == record_status
    assert plan.record.completed_at is not None


def test_a_superseded_job_is_cancelled_while_its_reexport_takes_the_service_file():
    plan = ending().plan(
        stored_job(reexport=True),
        SUPERSEDED,
        guard=Guard.RUNNING,
        reexport=stored_reexport(),
        at_version=True,
        context={"via": "internal_service"},
    )

    assert values_of(job_update(plan.items))["status"] == {"S": "cancelled"}
    assert plan.record.new_file == OTHER and plan.record.matches_original is False
    assert plan.record.comparison.reason == "the file was stored by an internal service; rows were not compared"
    record_update = plan.record_items[0]["Update"]
    assert record_update["ExpressionAttributeValues"][":expected_version"] == {"N": "4"}
    history = plan.record_items[2]["Put"]["Item"]
    assert (history["actor"], '"via":"internal_service"' in history["details_json"]["S"]) == ({"S": "svc-1"}, True)


@pytest.mark.parametrize(
    ("outcome", "guard"),
    [(SUCCEEDED, Guard.ATTEMPT), (SUPERSEDED, Guard.RUNNING)],
    ids=["by-the-pipeline", "by-an-internal-service"],
)
def test_a_succeeded_reexport_carries_its_files_expiry(outcome, guard):
    plan = ending().plan(stored_job(reexport=True), outcome, guard=guard, reexport=stored_reexport())

    assert plan.record.expires_at == outcome.expires_at
    assert values_of(plan.record_items[0]["Update"])["expires_at"] == {"S": format_timestamp(outcome.expires_at)}


def test_a_superseded_job_carries_no_expiry_of_its_own():
    plan = ending().plan(stored_job(reexport=True), SUPERSEDED, guard=Guard.RUNNING, reexport=stored_reexport())

    changed = values_of(job_update(plan.items))
    assert "expires_at" not in changed  # the file is the re-export's: its record says until when


def test_a_reexport_completed_late_takes_its_jobs_expiry():
    job = stored_job(
        JobStatus.SUCCEEDED, reexport=True, file_path=SAME.key, sha256=SAME.sha256, size_bytes=10, expires_at=MOMENT
    )

    plan = ending().plan(job, outcome_of(job.job), guard=Guard.ENDED, reexport=stored_reexport())

    assert plan.record.expires_at == MOMENT


@pytest.mark.parametrize("outcome", [Failed("NO_DATA", "nothing"), Cancelled(by="user-9")])
def test_a_reexport_that_did_not_succeed_has_no_expiry(outcome):
    plan = ending().plan(stored_job(reexport=True), outcome, guard=Guard.ATTEMPT, reexport=stored_reexport())

    assert plan.record.expires_at is None
    assert "expires_at" not in values_of(plan.record_items[0]["Update"])


def test_a_matching_file_is_not_compared_and_a_differing_one_is():
    comparer = CountingComparer()
    same = ending(comparer).plan(stored_job(reexport=True), SUCCEEDED, guard=Guard.ATTEMPT, reexport=stored_reexport())
    differing = ending(comparer).plan(
        stored_job(reexport=True),
        Succeeded(OTHER, {**MANIFEST, "source_watermark": "w2"}, SUCCEEDED.expires_at),
        guard=Guard.ATTEMPT,
        reexport=stored_reexport(),
    )

    assert (same.record.matches_original, same.record.comparison) == (True, None)
    assert (differing.record.matches_original, differing.record.comparison.compared) == (False, True)
    assert comparer.calls == 1
    assert differing.record.changed_inputs.source_watermark is True
    assert differing.record.changed_inputs.parameters is False


def test_without_a_comparer_or_for_a_late_ending_rows_are_not_compared():
    late = ending(CountingComparer()).plan(
        stored_job(JobStatus.SUCCEEDED, reexport=True),
        Succeeded(OTHER, None, SUCCEEDED.expires_at),
        guard=Guard.ENDED,
        reexport=stored_reexport(),
    )

    assert late.record.comparison == ComparisonSummary(
        compared=False, reason="the re-export was completed late; rows were not compared"
    )


def test_a_reexport_that_already_ended_is_left_as_it_is():
    plan = ending().plan(
        stored_job(reexport=True),
        Failed("X", "y"),
        guard=Guard.ATTEMPT,
        reexport=stored_reexport(ReexportStatus.SUCCEEDED),
    )

    assert (len(plan.job_items), plan.record_items, plan.record) == (2, [], None)


def test_the_history_entry_names_who_ended_it_and_how():
    cancelled = ending().plan(
        stored_job(JobStatus.QUEUED, reexport=True),
        Cancelled(by="canceller-9"),
        guard=Guard.VERSION,
        reexport=stored_reexport(ReexportStatus.PENDING),
        context={"while": "pending"},
    )
    completed = ending().plan(
        stored_job(reexport=True), Failed("NO_DATA", "n"), guard=Guard.ATTEMPT, reexport=stored_reexport()
    )

    cancelled_entry = cancelled.record_items[2]["Put"]["Item"]
    assert cancelled_entry["actor"] == {"S": "canceller-9"}
    assert cancelled_entry["details_json"]["S"] == (
        f'{{"job_id":"{JOB_ID}","reexport_id":"{REEXPORT_ID}","while":"pending"}}'
    )
    completed_entry = completed.record_items[2]["Put"]["Item"]
    assert completed_entry["actor"] == {"S": "auditor-1"}  # the generator ends it on the requester's behalf
    assert '"error_code":"NO_DATA"' in completed_entry["details_json"]["S"]
    assert '"outcome":"failed"' in completed_entry["details_json"]["S"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": JobStatus.CANCELLED}, ReexportStatus.CANCELLED),
        ({"status": JobStatus.FAILED, "error_code": "NO_DATA"}, ReexportStatus.FAILED),
        (
            {
                "status": JobStatus.SUCCEEDED,
                "file_path": SAME.key,
                "sha256": SAME.sha256,
                "size_bytes": 10,
                "expires_at": MOMENT,
            },
            ReexportStatus.SUCCEEDED,
        ),
        ({"status": JobStatus.SUCCEEDED}, ReexportStatus.FAILED),  # succeeded without a file: nothing to record
    ],
)
def test_a_finished_job_gives_the_outcome_its_reexport_ends_with(fields, expected):
    status = fields.pop("status")
    outcome = outcome_of(stored_job(status, **fields).job)

    assert ending_status(outcome) is expected
    if isinstance(outcome, Failed):
        assert outcome.code == fields.get("error_code", "INTERNAL")
