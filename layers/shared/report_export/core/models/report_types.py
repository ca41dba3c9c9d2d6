"""The report types as the API describes them: columns, formats, scope, filters and period, for clients
that build a request form or read a file without reading the code."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field

from report_export.core.models.common import Compression, ExportFormat, JobType, ServiceModel


class ColumnKind(StrEnum):
    """The kind of a report column: it decides the one canonical form its values take in every output."""

    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"


class Slicing(StrEnum):
    """How a report's period splits into slices the upstream can answer independently.

    A slice is the same query with a narrower period. Reading slices side by side and writing
    them one after the other gives the bytes of one sequential read exactly when the upstream's
    period filter selects by the first sort column: every record of one slice then sorts before
    every record of the next (the order check in the pipeline refuses a file where that fails).
    """

    DAYS = "days"
    WEEKS = "weeks"


class ReportColumn(ServiceModel):
    name: str = Field(description="The column's name: the CSV header, the NDJSON key", examples=["recorded_at"])
    type: ColumnKind = Field(
        description="date is YYYY-MM-DD; datetime is UTC to the millisecond (2025-01-01T06:30:00.000Z); "
        "integer is a whole number, decimal any finite number; boolean is true or false"
    )
    nullable: bool = Field(description="Whether a row may leave it empty (an empty CSV cell, null in NDJSON)")
    description: str = Field(examples=["When the intake was recorded (UTC)"])


class FilterRules(ServiceModel):
    """What the create request's filters may hold; every report type shares them."""

    max_count: int = Field(description="At most this many filters in one request", examples=[20])
    max_bytes: int = Field(
        description="The filters as compact JSON (sorted keys, UTF-8) may not exceed this many bytes", examples=[4096]
    )
    name_pattern: str = Field(description="A regular expression every filter name matches")
    reserved_names: list[str] = Field(
        description="Names no filter may have: the upstream query uses them for the tenant, scope, period, order "
        "and paging"
    )
    value_types: list[str] = Field(
        description="The JSON types a filter value may have; an array holds strings",
        examples=[["boolean", "integer", "number", "string", "array"]],
    )
    max_text_length: int = Field(
        description="A string value, and each string of an array, has at most this many characters", examples=[256]
    )
    max_list_items: int = Field(description="An array value holds at most this many strings", examples=[50])


class PeriodRules(ServiceModel):
    required: bool = Field(
        description="Whether start_date and end_date must be given; when one is given, so must the other"
    )
    max_days: int = Field(description="The longest period, end_date - start_date + 1, a job may cover", examples=[366])
    slicing: Slicing | None = Field(
        description="The parts (a day or a week each) the generator splits a job's period into to read them side "
        "by side, with the same file as one read; null when it reads the period in one go"
    )


_EXAMPLE = {
    "job_type": "FEED_INTAKE_EXPORT",
    "title": "Feed intake records",
    "description": "Every feed intake recorded in the tenant's barns: when, where, which feed and how many "
    "kilograms, oldest first.",
    "definition_version": 1,
    "columns": [
        {
            "name": "id",
            "type": "string",
            "nullable": False,
            "description": "The intake record's id in the feed service",
        },
        {
            "name": "recorded_at",
            "type": "datetime",
            "nullable": False,
            "description": "When the intake was recorded (UTC)",
        },
        {"name": "notes", "type": "string", "nullable": True, "description": "Free text entered with the record"},
    ],
    "formats": ["csv", "json"],
    "compressions": ["gzip"],
    "sort_key": ["recorded_at", "id"],
    "scope_fields": ["farm_id", "barn_id", "batch_id"],
    "scope_id_pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
    "filters": {
        "max_count": 20,
        "max_bytes": 4096,
        "name_pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        "reserved_names": [
            "barn_id",
            "batch_id",
            "cursor",
            "end_date",
            "farm_id",
            "limit",
            "sort",
            "start_date",
            "tenant_id",
        ],
        "value_types": ["boolean", "integer", "number", "string", "array"],
        "max_text_length": 256,
        "max_list_items": 50,
    },
    "period": {"required": False, "max_days": 366, "slicing": "days"},
}


class ReportType(ServiceModel):
    """One report type: what a job of it takes and what its file holds."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})

    job_type: JobType
    title: str
    description: str
    definition_version: int = Field(
        description="Raised whenever the columns, their formatting or the row order change; a job's manifest "
        "records the version its file was made with"
    )
    columns: list[ReportColumn] = Field(description="In the order of the file's columns")
    formats: list[ExportFormat] = Field(description="The format values a create request may give (json is NDJSON)")
    compressions: list[Compression] = Field(description="The compression values a create request may give, or none")
    sort_key: list[str] = Field(description="The columns the rows are ordered by, ascending; together unique")
    scope_fields: list[str] = Field(
        description="Optional request fields that narrow a job to one farm, barn or batch of the token's tenant"
    )
    scope_id_pattern: str = Field(description="A regular expression every scope field's value matches")
    filters: FilterRules
    period: PeriodRules


class ReportTypeList(ServiceModel):
    items: list[ReportType]
