"""What a report type is: where its rows come from, which columns it has, how rows are ordered.

Upstream records are JSON objects; a column names the field it reads and its kind, and the
kind decides the one canonical form the value takes in every output. That, with a fixed sort
order, is what makes two exports of the same data byte-identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from report_export.models import Job, JobType

Cell = str | int | float | bool | None


class BadRecord(ValueError):
    """An upstream record that does not fit the report type."""


class ColumnKind(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"


_MAX_STRING = 4096


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise BadRecord("expected text")
    if len(value) > _MAX_STRING:
        raise BadRecord(f"text longer than {_MAX_STRING} characters")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRecord("expected a whole number")
    return value


def _decimal(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRecord("expected a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRecord("expected a finite number")
    return value


def _date(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 10:
        raise BadRecord("expected a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise BadRecord("expected a date YYYY-MM-DD") from None


def _datetime(value: Any) -> str:
    if not isinstance(value, str):
        raise BadRecord("expected an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord("expected an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise BadRecord("expected a timestamp with a time zone")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRecord("expected true or false")
    return value


_NORMALISERS: dict[ColumnKind, Callable[[Any], Cell]] = {
    ColumnKind.STRING: _string,
    ColumnKind.INTEGER: _integer,
    ColumnKind.DECIMAL: _decimal,
    ColumnKind.DATE: _date,
    ColumnKind.DATETIME: _datetime,
    ColumnKind.BOOLEAN: _boolean,
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: ColumnKind
    required: bool = True
    source: str | None = None  # the upstream field, when it is named differently

    @property
    def field(self) -> str:
        return self.source or self.name


@dataclass(frozen=True)
class ReportDefinition:
    job_type: JobType
    # Bumped whenever columns, formatting or order change: a re-export can then tell a
    # definition change from a data change.
    version: int
    service: str  # which upstream service: its base URL is configuration
    path: str
    columns: tuple[Column, ...]
    sort_key: tuple[str, ...]
    title: str
    # Query parameters beyond the common scope and period ones.
    extra_query: Callable[[Job], Mapping[str, str]] = field(default=lambda job: {})
    _positions: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        missing = [name for name in self.sort_key if name not in names]
        if missing:
            raise ValueError(f"{self.job_type}: sort key {missing} is not a column")
        object.__setattr__(self, "_positions", tuple(names.index(name) for name in self.sort_key))

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def upstream_query(self, job: Job) -> dict[str, str]:
        """The query sent upstream: the job's filters, then scope, period and order, which no filter may replace."""
        query: dict[str, str] = {}
        for name, value in sorted((job.filters or {}).items()):
            query[name] = ",".join(map(str, value)) if isinstance(value, list) else _query_value(value)
        query.update(self.extra_query(job))
        # Last, so that a filter named tenant_id can never widen the query to another tenant's data.
        query["tenant_id"] = job.tenant_id
        query["sort"] = ",".join(self.sort_key)
        for name in ("farm_id", "barn_id", "batch_id"):
            value = getattr(job, name)
            if value is not None:
                query[name] = value
            else:
                query.pop(name, None)
        if job.start_date is not None and job.end_date is not None:
            query["start_date"] = job.start_date.isoformat()
            query["end_date"] = job.end_date.isoformat()
        else:
            query.pop("start_date", None)
            query.pop("end_date", None)
        return query

    def row(self, record: Any) -> tuple[Cell, ...]:
        """One output row from one upstream record; BadRecord names the field that does not fit."""
        if not isinstance(record, Mapping):
            raise BadRecord("a record is not a JSON object")
        cells: list[Cell] = []
        for column in self.columns:
            value = record.get(column.field)
            if value is None:
                if column.required:
                    raise BadRecord(f"field {column.field!r} is missing")
                cells.append(None)
                continue
            try:
                cells.append(_NORMALISERS[column.kind](value))
            except BadRecord as problem:
                raise BadRecord(f"field {column.field!r}: {problem}") from None
        return tuple(cells)

    def sort_value(self, row: Sequence[Cell]) -> tuple[Any, ...]:
        # None sorts first, and values of one column always share a kind, so tuples compare safely.
        return tuple((row[position] is not None, row[position]) for position in self._positions)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
