"""What a re-export's completion says (report_export.lineage), and the rules of its overrides."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from report_export.core.models.common import FileReference
from report_export.core.models.reexports import (
    ChangedInputs,
    ComparisonSummary,
    Reexport,
    ReexportOverrides,
    ReexportStatus,
)
from report_export.reexports.lineage import lineage_summary, lineage_text

MOMENT = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)


def record(**changes):
    fields = {
        "id": "0195a2b0-4c1d-7e2f-9a3b-5c6d7e8f9a0b",
        "tenant_id": "tenant-7",
        "report_id": "0194d0d4-e200-7a3c-8f21-5b6e0c9d4a17",
        "job_id": "0195a2b0-4c1e-7f30-8b4c-6d7e8f9a0b1c",
        "status": ReexportStatus.SUCCEEDED,
        "requested_by": "user-123",
        "reason": "audit",
        "original_parameters": {"job_type": "FEED_INTAKE_EXPORT", "format": "csv"},
        "effective_parameters": {"job_type": "FEED_INTAKE_EXPORT", "format": "csv"},
        "original_file": FileReference(key="a", size_bytes=10, sha256="1" * 64, row_count=2),
        "new_file": FileReference(key="b", size_bytes=12, sha256="2" * 64, row_count=3),
        "matches_original": False,
        "created_at": MOMENT,
        "updated_at": MOMENT,
        "completed_at": MOMENT,
        "version": 3,
    }
    return Reexport(**{**fields, **changes})


def test_the_summary_names_both_files_and_the_outcome():
    summary = lineage_summary(record(comparison=ComparisonSummary(compared=False, reason="gone")))

    assert summary["original_file"] == {"key": "a", "size_bytes": 10, "sha256": "1" * 64, "row_count": 2}
    assert summary["new_file"]["sha256"] == "2" * 64
    assert (summary["matches_original"], summary["completed_at"]) == (False, "2025-03-10T08:00:00.000Z")
    assert summary["comparison"] == {"compared": False, "reason": "gone"}


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (ChangedInputs(definition_version=True, parameters=False, source_watermark=True),
         "Changed since the original: the report definition, the source data (watermark)."),
        (ChangedInputs(definition_version=False, parameters=False, source_watermark=False),
         "The report definition and the parameters are unchanged: the upstream data changed."),
        (ChangedInputs(), None),
    ],
)  # fmt: skip
def test_the_text_says_why_the_files_may_differ(changed, expected):
    text = lineage_text(
        record(
            changed_inputs=changed,
            comparison=ComparisonSummary(compared=True, only_in_original=1, only_in_new=2, changed=3, unchanged=4),
        )
    )

    assert "The new file differs from the original." in text
    assert "Rows only in the original: 1; only in the new file: 2; changed: 3; unchanged: 4." in text
    if expected:
        assert expected in text
    else:
        assert "Changed since" not in text and "unchanged: the upstream" not in text


def test_a_matching_file_says_so_and_nothing_about_rows():
    text = lineage_text(record(matches_original=True, new_file=None))

    assert "byte-identical" in text and "Rows" not in text


def test_overrides_keep_only_what_was_given_and_null_removes():
    overrides = ReexportOverrides.model_validate(
        {"compression": None, "start_date": "2025-01-01", "end_date": "2025-01-02"}
    )

    assert overrides.given() == {"compression": None, "start_date": "2025-01-01", "end_date": "2025-01-02"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"end_date": "2025-01-02"}, "start_date and end_date must be given together"),
        ({"start_date": None, "end_date": None}, "start_date cannot be null"),
        ({"start_date": "2025-01-03", "end_date": "2025-01-02"}, "end_date must be on or after start_date"),
        ({"filters": {"cursor": "x"}}, "cursor cannot be a filter"),
    ],
)
def test_overrides_follow_the_rules_of_a_new_job(body, fragment):
    with pytest.raises(ValidationError, match=fragment):
        ReexportOverrides.model_validate(body)
