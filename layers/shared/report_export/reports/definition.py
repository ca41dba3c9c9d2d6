"""What a report type is: where its rows come from, which columns it has, how rows are ordered.

Upstream records are JSON objects; a column names the field it reads and its kind, and the
kind decides the one canonical form the value takes in every output. That, with a fixed sort
order, is what makes two exports of the same data byte-identical.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

from report_export.core.models.common import JobType
from report_export.core.models.jobs import Job
from report_export.core.models.report_types import ColumnKind, Slicing  # with the models the catalogue shows them in

Cell = str | int | float | bool | None


class BadRecord(ValueError):
    """An upstream record that does not fit the report type."""

    position: int | None = None  # which record of its page, when rows() raised it


# The job fields that narrow a report to part of the tenant's data; each is sent upstream as it is named.
SCOPE_FIELDS = ("farm_id", "barn_id", "batch_id")

_SLICE_DAYS = {Slicing.DAYS: 1, Slicing.WEEKS: 7}

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


_CANONICAL_DATE = re.compile(r"\d{4}-\d\d-\d\d")
_CANONICAL_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _datetime(value: Any) -> str:
    if not isinstance(value, str):
        raise BadRecord("expected an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise BadRecord("expected an ISO 8601 timestamp") from None
    if _CANONICAL_DATETIME.fullmatch(value):
        # Most upstreams already send the canonical form: re-formatting it is half the cost of a row.
        return value
    if moment.tzinfo is None:
        raise BadRecord("expected a timestamp with a time zone")
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRecord("expected true or false")
    return value


_NONE = type(None)


def _column_is_canonical(kind: ColumnKind, values: Sequence[Any], *, required: bool) -> bool:
    """Whether every value of one column is already in the form its normaliser would give.

    C-level checks over the whole column (type sets, map, all) instead of one call per cell;
    any doubt answers False and the page goes through row(), which also words the error.
    """
    types = set(map(type, values))
    if _NONE in types:
        if required:
            return False
        types.discard(_NONE)
        values = [value for value in values if value is not None]
    if kind is ColumnKind.STRING:
        return types <= {str} and max(map(len, values), default=0) <= _MAX_STRING
    if kind is ColumnKind.INTEGER:
        return types <= {int}
    if kind is ColumnKind.BOOLEAN:
        return types <= {bool}
    if kind is ColumnKind.DECIMAL:
        if not types <= {int, float}:
            return False
        try:
            return float not in types or math.isfinite(math.fsum(values))  # nan and inf survive a sum
        except OverflowError:
            return False
    pattern, parse = (
        (_CANONICAL_DATE, date.fromisoformat)
        if kind is ColumnKind.DATE
        else (
            _CANONICAL_DATETIME,
            datetime.fromisoformat,
        )
    )
    if not types <= {str} or not all(map(pattern.fullmatch, values)):
        return False
    try:
        list(map(parse, values))  # the pattern does not know that February has no 30th
    except ValueError:
        return False
    return True


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
    # What the column holds, for the report-type catalogue; documentation, so rewording it changes no file.
    description: str = field(default="", compare=False)

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
    # What the report is for, in a sentence or two, for the report-type catalogue.
    description: str = field(default="", compare=False)
    # Query parameters beyond the common scope and period ones.
    extra_query: Callable[[Job], Mapping[str, str]] = field(default=lambda job: {})
    # Declared only where the first sort column is the date the upstream filters the period by.
    slicing: Slicing | None = None
    _positions: tuple[int, ...] = field(init=False, repr=False)
    _readers: tuple[tuple[str, Callable[[Any], Cell], bool], ...] = field(init=False, repr=False)
    _sort_key_required: bool = field(init=False, repr=False)
    _fields_of: Callable[[Any], tuple[Any, ...]] = field(init=False, repr=False, compare=False)
    _sort_key_of: Callable[[Sequence[Cell]], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [column.name for column in self.columns]
        missing = [name for name in self.sort_key if name not in names]
        if missing:
            raise ValueError(f"{self.job_type}: sort key {missing} is not a column")
        object.__setattr__(self, "_positions", tuple(names.index(name) for name in self.sort_key))
        first_sort_kind = self.columns[self._positions[0]].kind
        if self.slicing is not None and first_sort_kind not in (ColumnKind.DATE, ColumnKind.DATETIME):
            raise ValueError(f"{self.job_type}: slicing needs a date or timestamp as the first sort column")
        readers = tuple((column.field, _NORMALISERS[column.kind], column.required) for column in self.columns)
        object.__setattr__(self, "_readers", readers)
        required = all(self.columns[position].required for position in self._positions)
        object.__setattr__(self, "_sort_key_required", required)
        fields = [column.field for column in self.columns]
        # itemgetter of one name gives the value, not a 1-tuple: a row is always a tuple.
        fields_of = operator.itemgetter(*fields) if len(fields) > 1 else lambda record: (record[fields[0]],)
        object.__setattr__(self, "_fields_of", fields_of)
        object.__setattr__(self, "_sort_key_of", operator.itemgetter(*self._positions))

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
        for name in SCOPE_FIELDS:
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

    def slices(self, job: Job) -> list[tuple[date, date]]:
        """The job's period as consecutive slices (first and last day of each), or [] when it does not split."""
        if self.slicing is None or job.start_date is None or job.end_date is None:
            return []
        step = timedelta(days=_SLICE_DAYS[self.slicing])
        periods = []
        first = job.start_date
        while first <= job.end_date:
            last = min(first + step - timedelta(days=1), job.end_date)
            periods.append((first, last))
            first = last + timedelta(days=1)
        return periods

    def row(self, record: Any) -> tuple[Cell, ...]:
        """One output row from one upstream record; BadRecord names the field that does not fit."""
        if not isinstance(record, Mapping):
            raise BadRecord("a record is not a JSON object")
        cells: list[Cell] = []
        append = cells.append
        for name, normalise, required in self._readers:  # the hot path: one pass per row, no lookups
            value = record.get(name)
            if value is None:
                if required:
                    raise BadRecord(f"field {name!r} is missing")
                append(None)
                continue
            try:
                append(normalise(value))
            except BadRecord as problem:
                raise BadRecord(f"field {name!r}: {problem}") from None
        return tuple(cells)

    def rows(self, records: Sequence[Any]) -> list[tuple[Cell, ...]]:
        """The rows of one page, as row() would give them, column by column when the data allows.

        Upstreams mostly send values already in canonical form; checking a whole column at once
        costs a fraction of normalising each cell. BadRecord carries the record's position.
        """
        try:
            # One C-level call per record gives its row; a record that lacks a field (an optional one
            # left out) or is not a JSON object takes the general path, which also words the error.
            rows = list(map(self._fields_of, records))
        except (KeyError, TypeError, IndexError):
            return self._rows_one_by_one(records)
        for column, values in zip(self.columns, zip(*rows, strict=True), strict=False):
            if not _column_is_canonical(column.kind, values, required=column.required):
                return self._rows_one_by_one(records)
        return rows

    def _rows_one_by_one(self, records: Sequence[Any]) -> list[tuple[Cell, ...]]:
        result = []
        for position, record in enumerate(records):
            try:
                result.append(self.row(record))
            except BadRecord as problem:
                problem.position = position
                raise
        return result

    def first_out_of_order(self, rows: Sequence[Sequence[Cell]], previous: tuple[Any, ...] | None) -> int | None:
        """Index of the first row that is not strictly after the one before it, or None.

        `previous` is the sort value of the last row of the page before.
        """
        if not rows:
            return None
        if previous is not None and self.sort_value(rows[0]) <= previous:
            return 0
        if self._sort_key_required:
            # No None in the key, so the plain values compare as sort_value's pairs would.
            keys = list(map(self._sort_key_of, rows))  # tuples, or plain values for a one-column key
            if all(map(operator.lt, keys, keys[1:])):
                return None
        values = list(map(self.sort_value, rows))
        return next((index + 1 for index, (a, b) in enumerate(pairwise(values)) if not a < b), None)

    def sort_value(self, row: Sequence[Cell]) -> tuple[Any, ...]:
        # None sorts first, and values of one column always share a kind, so tuples compare safely.
        return tuple((row[position] is not None, row[position]) for position in self._positions)


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
