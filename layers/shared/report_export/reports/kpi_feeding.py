from report_export.core.models.common import JobType
from report_export.reports.definition import Column, ColumnKind, ReportDefinition, Slicing

K = ColumnKind

DEFINITION = ReportDefinition(
    job_type=JobType.KPI_FEEDING_EXPORT,
    version=1,
    title="Feeding KPIs per day",
    description="The feed service's daily feeding figures per barn and batch: head count, feed used, average "
    "weight, feed conversion ratio and mortality.",
    service="feed",
    path="/api/v1/kpi/feeding",
    columns=(
        Column("id", K.STRING, description="The daily figure's id in the feed service"),
        Column("date", K.DATE, description="The day the figures are for"),
        Column("farm_id", K.STRING, description="The farm the barn belongs to"),
        Column("barn_id", K.STRING, description="The barn the figures are for"),
        Column("batch_id", K.STRING, required=False, description="The batch the figures are for, when one was named"),
        Column("animal_count", K.INTEGER, description="Animals in the barn or batch that day"),
        Column("feed_kg", K.DECIMAL, description="Feed used that day, in kilograms"),
        Column("avg_weight_kg", K.DECIMAL, required=False, description="Average animal weight, in kilograms"),
        Column(
            "fcr",
            K.DECIMAL,
            required=False,
            description="Feed conversion ratio: kilograms of feed per kilogram of weight gained",
        ),
        Column("mortality_pct", K.DECIMAL, required=False, description="Animals that died, as a percentage"),
    ),
    sort_key=("date", "id"),
    slicing=Slicing.WEEKS,
)
