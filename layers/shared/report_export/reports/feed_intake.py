from report_export.core.models.common import JobType
from report_export.reports.definition import Column, ColumnKind, ReportDefinition, Slicing

K = ColumnKind

DEFINITION = ReportDefinition(
    job_type=JobType.FEED_INTAKE_EXPORT,
    version=1,
    title="Feed intake records",
    service="feed",
    path="/api/v1/feed/intake-records",
    columns=(
        Column("id", K.STRING),
        Column("recorded_at", K.DATETIME),
        Column("farm_id", K.STRING),
        Column("barn_id", K.STRING),
        Column("batch_id", K.STRING, required=False),
        Column("feed_type", K.STRING),
        Column("quantity_kg", K.DECIMAL),
        Column("source", K.STRING),
        Column("notes", K.STRING, required=False),
    ),
    sort_key=("recorded_at", "id"),
    slicing=Slicing.DAYS,
)
