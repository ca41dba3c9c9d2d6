"""What a re-export's completion says: the lineage summary in events and the lines in notifications.

Shared by the generator (whose state machine announces what the pipeline produced) and the API
(which announces a result an internal service stored), so both say the same thing.
"""

from __future__ import annotations

from typing import Any

from report_export.core.models.common import FileReference, format_timestamp
from report_export.core.models.reexports import ChangedInputs, ComparisonSummary, Reexport

REEXPORT_COMPLETED_DETAIL_TYPE = "Report Reexport Completed"


def _file_summary(file: FileReference | None) -> dict[str, Any] | None:
    if file is None:
        return None
    summary = {"key": file.key, "size_bytes": file.size_bytes, "sha256": file.sha256, "row_count": file.row_count}
    if file.check is not None:
        summary["check"] = file.check.model_dump(mode="json")
    return summary


def lineage_summary(record: Reexport) -> dict[str, Any]:
    """The facts of a re-export for subscribers: who, why, both files and whether they match."""
    return {
        "tenant_id": record.tenant_id,
        "reexport_id": record.id,
        "report_id": record.report_id,
        "job_id": record.job_id,
        "status": record.status.value,
        "requested_by": record.requested_by,
        "reason": record.reason,
        "requested_at": format_timestamp(record.created_at),
        "completed_at": format_timestamp(record.completed_at) if record.completed_at else None,
        "original_file": _file_summary(record.original_file),
        "new_file": _file_summary(record.new_file),
        "matches_original": record.matches_original,
        "comparison": record.comparison.model_dump(mode="json", exclude_none=True) if record.comparison else None,
        "changed_inputs": record.changed_inputs.model_dump(mode="json") if record.changed_inputs else None,
        "error_code": record.error_code,
    }


def lineage_text(record: Reexport) -> str:
    """Plain-text lines about the re-export for the notification e-mail."""
    lines = [f"Re-export {record.id} of report {record.report_id}, requested by {record.requested_by}."]
    if record.reason:
        lines.append(f"Reason: {record.reason}")
    if record.original_file is not None:
        lines.append(f"Original file: SHA-256 {record.original_file.sha256}, {record.original_file.size_bytes} bytes")
    if record.new_file is not None:
        lines.append(f"New file: SHA-256 {record.new_file.sha256}, {record.new_file.size_bytes} bytes")
    if record.matches_original is True:
        lines.append("The new file is byte-identical to the original.")
    elif record.matches_original is False:
        lines.append("The new file differs from the original.")
        lines.extend(_comparison_lines(record.comparison))
        lines.extend(_changed_input_lines(record.changed_inputs))
    return "\n".join(lines) + "\n"


def _comparison_lines(comparison: ComparisonSummary | None) -> list[str]:
    if comparison is None:
        return []
    if not comparison.compared:
        return [f"Rows were not compared: {comparison.reason}."]
    return [
        f"Rows only in the original: {comparison.only_in_original}; only in the new file: {comparison.only_in_new}; "
        f"changed: {comparison.changed}; unchanged: {comparison.unchanged}."
    ]


def _changed_input_lines(changed: ChangedInputs | None) -> list[str]:
    if changed is None:
        return []
    named = {
        "definition_version": "the report definition",
        "parameters": "the parameters",
        "source_watermark": "the source data (watermark)",
    }
    differing = [text for name, text in named.items() if getattr(changed, name) is True]
    if differing:
        return [f"Changed since the original: {', '.join(differing)}."]
    if changed.definition_version is False and changed.parameters is False:
        return ["The report definition and the parameters are unchanged: the upstream data changed."]
    return []
