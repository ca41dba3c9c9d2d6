"""The conditional writes as DynamoDB receives them: version bumps and index moves."""

import re

from report_export.aws.dynamo import keys
from report_export.aws.dynamo.updates import job_update, notified_update, reexport_update


def test_marking_a_job_notified_leaves_its_version_and_a_record_bumps_its_own():
    job = notified_update(keys.job_key("t", "j"), "2025-01-01T00:00:00.000Z")
    record = notified_update(keys.reexport_key("t", "r"), "2025-01-01T00:00:00.000Z", while_status="succeeded")

    assert "version" not in job.names.values()
    assert job.condition_expression == "attribute_exists(PK)"
    assert "version" in record.names.values()
    assert (record.condition_expression, record.values[":announced"]) == ("#status = :announced", {"S": "succeeded"})


def test_a_status_change_moves_the_item_to_its_status_partition():
    job = job_update(
        "t", "j", {"status": "failed"}, condition="attribute_exists(PK)", condition_names={}, condition_values={}
    )
    record = reexport_update(
        "t", "r", {"status": "cancelled"}, condition="attribute_exists(PK)", condition_names={}, condition_values={}
    )

    assigned = {job.names[name]: job.values[value] for name, value in _assignments(job.update_expression)}
    assert assigned["GSI1PK"] == {"S": "TENANT#t#STATUS#failed"}
    assigned = {record.names[name]: record.values[value] for name, value in _assignments(record.update_expression)}
    assert assigned["GSI1PK"] == {"S": "TENANT#t#REEXPORT_STATUS#cancelled"}


def _assignments(expression: str) -> list[tuple[str, str]]:
    return re.findall(r"(#a\d+) = (:v\d+)", expression)
