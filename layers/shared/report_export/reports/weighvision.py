from report_export.core.models.common import JobType
from report_export.reports.definition import Column, ColumnKind, ReportDefinition, Slicing

K = ColumnKind

DEFINITION = ReportDefinition(
    job_type=JobType.WEIGHVISION_EXPORT,
    version=1,
    title="WeighVision weighing sessions",
    service="weighvision",
    path="/api/v1/weighvision/sessions",
    columns=(
        Column("id", K.STRING),
        Column("weighed_at", K.DATETIME),
        Column("barn_id", K.STRING),
        Column("batch_id", K.STRING, required=False),
        Column("sample_count", K.INTEGER),
        Column("avg_weight_kg", K.DECIMAL),
        Column("min_weight_kg", K.DECIMAL),
        Column("max_weight_kg", K.DECIMAL),
        Column("uniformity_pct", K.DECIMAL, required=False),
    ),
    sort_key=("weighed_at", "id"),
    slicing=Slicing.DAYS,
)
