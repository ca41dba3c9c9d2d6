"""The report-type catalogue: what a job of each type takes and what its file holds, for clients.

Everything is read from the definitions and from what the create request is validated with (its model's
fields and schema, the filter limits, the MAX_PERIOD_DAYS setting), so the catalogue cannot promise what
POST /api/v1/reports/jobs refuses, nor leave out what it takes.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter

from report_export.core.errors import NotFound
from report_export.core.models.common import (
    MAX_FILTERS,
    MAX_FILTERS_BYTES,
    RESERVED_FILTER_NAMES,
    Compression,
    ExportFormat,
    JobType,
)
from report_export.core.models.jobs import CreateJobRequest
from report_export.core.models.report_types import FilterRules, PeriodRules, ReportColumn, ReportType
from report_export.core.settings import get_settings
from report_export.reports import REPORT_DEFINITIONS
from report_export.reports.definition import SCOPE_FIELDS, ReportDefinition

# The name is not quoted back: it is whatever the client put in the path.
_UNKNOWN = "No such report type; GET /api/v1/report-types lists them"


def report_types() -> list[ReportType]:
    """Every report type, in the registry's order."""
    max_period_days = get_settings().max_period_days
    return [describe(definition, max_period_days=max_period_days) for definition in REPORT_DEFINITIONS.values()]


def report_type(name: str) -> ReportType:
    """One report type by its job_type, exactly as a create request names it; NotFound otherwise."""
    try:
        definition = REPORT_DEFINITIONS[JobType(name)]
    except (ValueError, KeyError):
        raise NotFound(_UNKNOWN) from None
    return describe(definition, max_period_days=get_settings().max_period_days)


def describe(definition: ReportDefinition, *, max_period_days: int) -> ReportType:
    return ReportType(
        job_type=definition.job_type,
        title=definition.title,
        description=definition.description,
        definition_version=definition.version,
        columns=[
            ReportColumn(
                name=column.name, type=column.kind, nullable=not column.required, description=column.description
            )
            for column in definition.columns
        ],
        formats=list(ExportFormat),
        compressions=list(Compression),
        sort_key=list(definition.sort_key),
        scope_fields=list(scope_fields()),
        scope_id_pattern=scope_id_pattern(),
        filters=filter_rules(),
        period=PeriodRules(required=period_required(), max_days=max_period_days, slicing=definition.slicing),
    )


def scope_fields() -> tuple[str, ...]:
    """The request's fields that the upstream query is scoped by: both sides, or a client could not send it
    (only in the query) or it would narrow nothing (only in the request)."""
    return tuple(name for name in CreateJobRequest.model_fields if name in SCOPE_FIELDS)


def period_required() -> bool:
    fields = CreateJobRequest.model_fields
    return fields["start_date"].is_required() or fields["end_date"].is_required()


@cache
def _filters_schema() -> dict[str, Any]:
    """The JSON schema of the create request's filters object (its one non-null alternative)."""
    schema = TypeAdapter(CreateJobRequest.model_fields["filters"].annotation).json_schema()
    [filters] = [option for option in schema.get("anyOf", [schema]) if option.get("type") == "object"]
    return filters


def filter_rules() -> FilterRules:
    [(name_pattern, value_schema)] = _filters_schema()["patternProperties"].items()
    options = {option["type"]: option for option in value_schema.get("anyOf", [value_schema])}
    return FilterRules(
        max_count=MAX_FILTERS,
        max_bytes=MAX_FILTERS_BYTES,
        name_pattern=name_pattern,
        reserved_names=sorted(RESERVED_FILTER_NAMES),
        value_types=list(options),
        max_text_length=options["string"]["maxLength"],
        max_list_items=options["array"]["maxItems"],
    )


@cache
def scope_id_pattern() -> str:
    """The pattern the create request's schema gives every scope field (they share one type); built once, as
    the schema is the code's and each page of report types would otherwise build it again per type."""
    properties = CreateJobRequest.model_json_schema()["properties"]
    [pattern] = {
        option["pattern"] for name in scope_fields() for option in properties[name]["anyOf"] if "pattern" in option
    }
    return pattern
