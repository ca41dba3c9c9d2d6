"""The activity report an organisation files with its public funder (Bufdir) for a period."""

from report_export.core.models.common import JobType
from report_export.reports.definition import Column, ColumnKind, ReportDefinition, Slicing

K = ColumnKind

DEFINITION = ReportDefinition(
    job_type=JobType.BUFDIR_ACTIVITY_REPORT,
    version=1,
    title="Activity report to Bufdir",
    service="activity",
    path="/api/v1/activities",
    columns=(
        Column("id", K.STRING),
        Column("activity_date", K.DATE),
        Column("organisation_unit", K.STRING),
        Column("activity_type", K.STRING),
        Column("participants", K.INTEGER),
        Column("volunteer_hours", K.DECIMAL),
        Column("funded", K.BOOLEAN),
        Column("description", K.STRING, required=False),
    ),
    sort_key=("activity_date", "id"),
    slicing=Slicing.WEEKS,
)
