from report_export.core.models.common import JobType
from report_export.reports.definition import Column, ColumnKind, ReportDefinition, Slicing

K = ColumnKind

DEFINITION = ReportDefinition(
    job_type=JobType.KPI_FEEDING_EXPORT,
    version=1,
    title="Feeding KPIs per day",
    service="feed",
    path="/api/v1/kpi/feeding",
    columns=(
        Column("id", K.STRING),
        Column("date", K.DATE),
        Column("farm_id", K.STRING),
        Column("barn_id", K.STRING),
        Column("batch_id", K.STRING, required=False),
        Column("animal_count", K.INTEGER),
        Column("feed_kg", K.DECIMAL),
        Column("avg_weight_kg", K.DECIMAL, required=False),
        Column("fcr", K.DECIMAL, required=False),
        Column("mortality_pct", K.DECIMAL, required=False),
    ),
    sort_key=("date", "id"),
    slicing=Slicing.WEEKS,
)
