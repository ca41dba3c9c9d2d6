"""The report types. Each module declares one; adding a type is one small module plus a line here."""

from report_export.core.models.common import JobType
from report_export.reports import activity, feed_intake, kpi_feeding, telemetry, weighvision
from report_export.reports.definition import BadRecord, Column, ColumnKind, ReportDefinition, Slicing

REPORT_DEFINITIONS: dict[JobType, ReportDefinition] = {
    definition.job_type: definition
    for definition in (
        feed_intake.DEFINITION,
        kpi_feeding.DEFINITION,
        telemetry.DEFINITION,
        weighvision.DEFINITION,
        activity.DEFINITION,
    )
}


def definition_for(job_type: JobType) -> ReportDefinition:
    return REPORT_DEFINITIONS[job_type]


__all__ = ["REPORT_DEFINITIONS", "BadRecord", "Column", "ColumnKind", "ReportDefinition", "Slicing", "definition_for"]
