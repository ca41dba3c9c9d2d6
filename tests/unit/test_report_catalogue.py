"""The report-type catalogue: every type and column described, and each claim read from what the create
request is validated with, so that changing a rule changes the catalogue."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import StringConstraints
from test_import_boundaries import heavy_modules_loaded_by

from report_export.core.errors import NotFound
from report_export.core.models.common import RESERVED_FILTER_NAMES, FilterName, JobType, ScopeId
from report_export.core.models.jobs import CreateJobRequest
from report_export.core.models.report_types import ReportType
from report_export.reports import REPORT_DEFINITIONS, Column, ColumnKind, ReportDefinition, catalogue
from report_export.reports.catalogue import describe

K = ColumnKind


def plain_definition(**overrides) -> ReportDefinition:
    options = {
        "job_type": JobType.FEED_INTAKE_EXPORT,
        "version": 3,
        "service": "feed",
        "path": "/api/v1/test",
        "columns": (Column("id", K.STRING, description="The id"), Column("note", K.STRING, required=False)),
        "sort_key": ("id",),
        "title": "Test report",
    }
    options.update(overrides)
    return ReportDefinition(**options)


@pytest.mark.parametrize("definition", REPORT_DEFINITIONS.values(), ids=list(REPORT_DEFINITIONS))
def test_every_report_type_and_every_column_has_a_description(definition):
    assert definition.description.strip(), f"{definition.job_type} has no description"
    undescribed = [column.name for column in definition.columns if not column.description.strip()]
    assert undescribed == [], f"{definition.job_type}: columns without a description"


def test_a_description_is_documentation_and_leaves_a_definition_equal():
    assert Column("id", K.STRING, description="one") == Column("id", K.STRING, description="other")
    assert plain_definition(description="one") == plain_definition(description="other")


def test_a_definition_becomes_its_report_type():
    described = describe(plain_definition(description="For tests."), max_period_days=12)

    assert described.job_type is JobType.FEED_INTAKE_EXPORT
    assert (described.title, described.description, described.definition_version) == ("Test report", "For tests.", 3)
    assert [column.model_dump(mode="json") for column in described.columns] == [
        {"name": "id", "type": "string", "nullable": False, "description": "The id"},
        {"name": "note", "type": "string", "nullable": True, "description": ""},
    ]
    assert described.sort_key == ["id"]
    assert described.period.model_dump(mode="json") == {"required": False, "max_days": 12, "slicing": None}


def test_scope_fields_are_the_create_requests_scope_ids_the_upstream_is_scoped_by():
    scope = catalogue.scope_fields()

    assert scope == ("farm_id", "barn_id", "batch_id")
    for name in scope:
        assert CreateJobRequest.model_fields[name].annotation == ScopeId | None


def test_filter_rules_are_the_create_requests():
    [constraints] = [meta for meta in get_args(FilterName)[1:] if isinstance(meta, StringConstraints)]
    rules = catalogue.filter_rules()

    assert rules.name_pattern == constraints.pattern
    assert rules.reserved_names == sorted(RESERVED_FILTER_NAMES)
    assert rules.value_types == ["boolean", "integer", "number", "string", "array"]


def test_the_period_is_optional_because_the_create_request_takes_none():
    assert catalogue.period_required() is False
    assert CreateJobRequest(job_type=JobType.TELEMETRY_EXPORT).period_days is None


@pytest.mark.parametrize("name", ["feed_intake_export", "NO_SUCH_EXPORT", "", "FEED_INTAKE_EXPORT\x00"])
def test_a_name_that_is_not_a_job_type_is_not_found(name):
    with pytest.raises(NotFound):
        catalogue.report_type(name)


def test_the_documents_example_is_the_feed_intake_type_as_listed():
    """The OpenAPI example shows a few of the columns; everything else is the catalogue's own answer."""
    [example] = ReportType.model_json_schema()["examples"]
    real = describe(REPORT_DEFINITIONS[JobType.FEED_INTAKE_EXPORT], max_period_days=366).model_dump(mode="json")

    assert ReportType.model_validate(example)
    assert {name: value for name, value in example.items() if name != "columns"} == {
        name: value for name, value in real.items() if name != "columns"
    }
    assert all(column in real["columns"] for column in example["columns"])


def test_the_api_function_loads_the_report_definitions_only_when_the_catalogue_is_asked_for():
    assert heavy_modules_loaded_by("api.handler", "report_export.reports") == []
