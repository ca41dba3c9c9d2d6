"""The activity report an organisation files with its public funder (Bufdir) for a period."""

from report_export.core.models.common import JobType
from report_export.reports.definition import Column, ColumnKind, ReportDefinition, Slicing

K = ColumnKind

DEFINITION = ReportDefinition(
    job_type=JobType.BUFDIR_ACTIVITY_REPORT,
    version=1,
    title="Activity report to Bufdir",
    description="The annual activity report an organisation files with its public funder, Bufdir: each activity "
    "held in the period, with its participants, volunteer hours and whether it was funded.",
    service="activity",
    path="/api/v1/activities",
    columns=(
        Column("id", K.STRING, description="The activity's id in the activity service"),
        Column("activity_date", K.DATE, description="The day the activity was held"),
        Column("organisation_unit", K.STRING, description="The part of the organisation that held it"),
        Column("activity_type", K.STRING, description="The kind of activity, as the activity service names it"),
        Column("participants", K.INTEGER, description="How many took part"),
        Column("volunteer_hours", K.DECIMAL, description="Hours of volunteer work it took"),
        Column("funded", K.BOOLEAN, description="Whether the activity service records it as funded"),
        Column("description", K.STRING, required=False, description="What the activity was, in the organiser's words"),
    ),
    sort_key=("activity_date", "id"),
    slicing=Slicing.WEEKS,
)
