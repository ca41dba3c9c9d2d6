from report_export.core.models.common import JobType
from report_export.reports.definition import Column, ColumnKind, ReportDefinition, Slicing

K = ColumnKind

DEFINITION = ReportDefinition(
    job_type=JobType.FEED_INTAKE_EXPORT,
    version=1,
    title="Feed intake records",
    description="Every feed intake recorded in the tenant's barns: when, where, which feed and how many kilograms, "
    "oldest first.",
    service="feed",
    path="/api/v1/feed/intake-records",
    columns=(
        Column("id", K.STRING, description="The intake record's id in the feed service"),
        Column("recorded_at", K.DATETIME, description="When the intake was recorded (UTC)"),
        Column("farm_id", K.STRING, description="The farm the barn belongs to"),
        Column("barn_id", K.STRING, description="The barn the feed went to"),
        Column("batch_id", K.STRING, required=False, description="The batch of animals fed, when one was named"),
        Column("feed_type", K.STRING, description="The kind of feed, as the feed service names it (e.g. starter)"),
        Column("quantity_kg", K.DECIMAL, description="How much feed, in kilograms"),
        Column("source", K.STRING, description="How the intake was recorded, e.g. MANUAL for an entry by hand"),
        Column("notes", K.STRING, required=False, description="Free text entered with the record"),
    ),
    sort_key=("recorded_at", "id"),
    slicing=Slicing.DAYS,
)
