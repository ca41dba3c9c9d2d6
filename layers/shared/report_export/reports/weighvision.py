from report_export.core.models.common import JobType
from report_export.reports.definition import Column, ColumnKind, ReportDefinition, Slicing

K = ColumnKind

DEFINITION = ReportDefinition(
    job_type=JobType.WEIGHVISION_EXPORT,
    version=1,
    title="WeighVision weighing sessions",
    description="Each WeighVision weighing session in a barn: how many animals were weighed and their average, "
    "lightest and heaviest weight, and how even the weights were.",
    service="weighvision",
    path="/api/v1/weighvision/sessions",
    columns=(
        Column("id", K.STRING, description="The session's id in the WeighVision service"),
        Column("weighed_at", K.DATETIME, description="When the session took place (UTC)"),
        Column("barn_id", K.STRING, description="The barn weighed in"),
        Column("batch_id", K.STRING, required=False, description="The batch weighed, when one was named"),
        Column("sample_count", K.INTEGER, description="How many weighings the session took"),
        Column("avg_weight_kg", K.DECIMAL, description="The average weight, in kilograms"),
        Column("min_weight_kg", K.DECIMAL, description="The lightest weight, in kilograms"),
        Column("max_weight_kg", K.DECIMAL, description="The heaviest weight, in kilograms"),
        Column("uniformity_pct", K.DECIMAL, required=False, description="How even the weights were, as a percentage"),
    ),
    sort_key=("weighed_at", "id"),
    slicing=Slicing.DAYS,
)
