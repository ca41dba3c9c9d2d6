"""docs/configuration.md stays true: its tables list every variable the functions read or the template
sets, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from report_export.core.settings import Settings

from support.template import TEMPLATE_PATH, load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "configuration.md"
# The first cell of a table row: `NAME`, or several names, each in backticks.
_FIRST_CELL = re.compile(r"^\|([^|]*)\|", re.M)
_UPPER_NAME = re.compile(r"`([A-Z][A-Z0-9_]*)`")


def _listed_names() -> set[str]:
    """Every `UPPER_CASE` name in the first column of the doc's tables."""
    text = DOC.read_text(encoding="utf-8")
    return {name for cell in _FIRST_CELL.findall(text) for name in _UPPER_NAME.findall(cell)}


def _settings_aliases() -> set[str]:
    return {field.alias for field in Settings.model_fields.values() if field.alias}


def _template_variables() -> set[str]:
    """Variables template.yaml sets for the functions: Globals.Function and each function's own."""
    template = load_template(TEMPLATE_PATH)
    sections = [template.get("Globals", {}).get("Function", {})]
    sections += [
        resource.get("Properties", {})
        for resource in template["Resources"].values()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]
    return {str(name) for section in sections for name in section.get("Environment", {}).get("Variables", {})}


def _template_parameters() -> set[str]:
    return {str(name) for name in load_template(TEMPLATE_PATH).get("Parameters", {})}


def test_every_setting_is_documented():
    missing = sorted(_settings_aliases() - _listed_names())
    assert not missing, f"Settings reads {missing}, which docs/configuration.md does not list"


def test_every_variable_the_template_sets_is_documented():
    missing = sorted(_template_variables() - _listed_names())
    assert not missing, f"template.yaml sets {missing}, which docs/configuration.md does not list"


def test_the_doc_lists_nothing_stale():
    known = _settings_aliases() | _template_variables() | _template_parameters()
    stale = sorted(_listed_names() - known)
    assert not stale, f"docs/configuration.md lists {stale}: no Settings alias, template variable or parameter"
