from report_export.core.models.common import JobType
from report_export.reports.definition import Column, ColumnKind, ReportDefinition, Slicing

K = ColumnKind

DEFINITION = ReportDefinition(
    job_type=JobType.TELEMETRY_EXPORT,
    version=1,
    title="Barn telemetry readings",
    description="Every reading the barns' sensors sent: which device, which metric, its value and unit, oldest first.",
    service="telemetry",
    path="/api/v1/telemetry/readings",
    columns=(
        Column("id", K.STRING, description="The reading's id in the telemetry service"),
        Column("recorded_at", K.DATETIME, description="When the sensor took the reading (UTC)"),
        Column("device_id", K.STRING, description="The sensor or device that sent it"),
        Column("barn_id", K.STRING, description="The barn the device is in"),
        Column("metric", K.STRING, description="What was measured, as the telemetry service names it"),
        Column("value", K.DECIMAL, description="The measured value, in unit"),
        Column("unit", K.STRING, description="The unit of value, e.g. C"),
    ),
    sort_key=("recorded_at", "id"),
    slicing=Slicing.DAYS,
)
