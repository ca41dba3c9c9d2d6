from report_export.core.models.common import JobType
from report_export.reports.definition import Column, ColumnKind, ReportDefinition, Slicing

K = ColumnKind

DEFINITION = ReportDefinition(
    job_type=JobType.TELEMETRY_EXPORT,
    version=1,
    title="Barn telemetry readings",
    service="telemetry",
    path="/api/v1/telemetry/readings",
    columns=(
        Column("id", K.STRING),
        Column("recorded_at", K.DATETIME),
        Column("device_id", K.STRING),
        Column("barn_id", K.STRING),
        Column("metric", K.STRING),
        Column("value", K.DECIMAL),
        Column("unit", K.STRING),
    ),
    sort_key=("recorded_at", "id"),
    slicing=Slicing.DAYS,
)
