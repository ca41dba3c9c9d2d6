"""Row encoders for the export files: CSV and NDJSON (the gzip stage is in `compression`).

Rows arrive as tuples of JSON-native values (str | int | float | bool | None) in column
order, a batch (one upstream page) at a time. Output is deterministic: the same rows give
the same bytes whatever the batch boundaries, which is what makes a re-export verifiable.

Bad data (NaN or infinite floats, integers NDJSON cannot represent, strings that are not
valid Unicode, a row of the wrong length) raises ValueError, which the generator maps to a
bad-data error. A value of any other type, subclasses included, raises TypeError: that is a
bug in the report type, not in the data. Subclasses are refused because their text is not
stable (an IntEnum's str() changed in Python 3.11) and the two formats would render them
differently.

The hot path works column by column on each batch: C-level checks (type sets, startswith,
repr) decide whether a column needs Python-level formatting at all, which most columns of
ids, dates and integers do not. That keeps CSV encoding close to csv.writer's own speed.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import partial
from operator import is_not
from typing import Any, Protocol

import orjson

from report_export.core.models.common import GZIP_MIME_TYPE, ExportFormat

Cell = str | int | float | bool | None
Row = tuple[Cell, ...]

CSV_MIME_TYPE = "text/csv"
CSV_EXTENSION = ".csv"
NDJSON_MIME_TYPE = "application/x-ndjson"
NDJSON_EXTENSION = ".ndjson"
GZIP_EXTENSION = ".gz"

_NONE_TYPE = type(None)
_ALLOWED_TYPES = frozenset({str, int, float, bool, _NONE_TYPE})
_INTEGERS = frozenset({int, _NONE_TYPE})
_NUMBERS = frozenset({int, float, _NONE_TYPE})
_TEXTS = frozenset({str, _NONE_TYPE})
_FLOATS = frozenset({float, _NONE_TYPE})
_BOOLEANS = frozenset({bool, _NONE_TYPE})
_BOOL_TEXT = {True: "true", False: "false"}
_is_present = partial(is_not, None)

# OWASP "CSV Injection": a spreadsheet runs a cell starting with one of these as a formula
# (TAB and CR are included because some spreadsheets skip them before looking for "=").
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_AFTER_SEPARATOR = re.compile("\x00[=+\\-@\t\r]")


def _neutralise(text: str) -> str:
    # The leading quote makes spreadsheets show the cell as text; the value stays readable.
    return "'" + text if text.startswith(_FORMULA_PREFIXES) else text


def format_float(value: float) -> str:
    """Shortest text that reads back as the same float, never in scientific notation.

    Integral values drop the ".0" so that 1e16 and 3.0 read alike ("10000000000000000", "3"),
    and -0.0 is "0": spreadsheets and most CSV readers make no difference between them.
    """
    text = repr(value)
    if "e" in text or "n" in text:  # scientific notation, or nan / inf
        if not math.isfinite(value):
            raise ValueError(f"{text} cannot be exported: only finite numbers can")
        # Decimal keeps repr's shortest digits; its "f" format only moves the decimal point.
        return format(Decimal(text), "f")
    if text.endswith(".0"):
        return "0" if text == "-0.0" else text[:-2]
    return text


def _format_cell(value: Any) -> Cell:
    """One CSV cell: the slow, general path, for a column the fast checks did not clear."""
    kind = type(value)
    if kind is str:
        return _neutralise(value)
    if kind is float:
        return format_float(value)
    if kind is bool:
        return _BOOL_TEXT[value]
    if kind is int or value is None:
        return value  # csv.writer writes ints as digits and None as an empty cell
    raise TypeError(f"unsupported value type {kind.__name__}: rows hold str, int, float, bool or None")


def _check_types(types: set[type], column: str) -> None:
    if not types <= _ALLOWED_TYPES:
        names = ", ".join(sorted(kind.__name__ for kind in types - _ALLOWED_TYPES))
        raise TypeError(f"column {column!r} holds unsupported type(s) {names}: rows hold str, int, float, bool or None")


def _csv_column(values: tuple[Any, ...], column: str) -> Sequence[Cell] | None:
    """The column's cells as csv.writer should receive them, or None when they need no change.

    csv.writer already writes str as is, int as digits and None as an empty cell.
    """
    types = set(map(type, values))
    if types <= _INTEGERS:
        return None
    if types <= _TEXTS:
        return _text_column(values, has_none=_NONE_TYPE in types)
    if types <= _NUMBERS:
        return _number_column(values, has_none=_NONE_TYPE in types)
    if types <= _BOOLEANS:
        return list(map(_BOOL_TEXT.get, values))  # type: ignore[arg-type]  # .get(None) is None
    _check_types(types, column)
    return [_format_cell(value) for value in values]


def _text_column(values: tuple[Any, ...], *, has_none: bool) -> Sequence[Cell] | None:
    # One search over the joined column instead of a check per cell, and where cells need the quote,
    # one substitution over the joined column and a split back into cells: C-level work whatever the
    # page size. csv.writer writes None and "" alike (an empty cell), so None may join as "".
    texts = ["" if value is None else value for value in values] if has_none else values
    joined = "\x00" + "\x00".join(texts)
    if not _FORMULA_AFTER_SEPARATOR.search(joined):
        return None
    if joined.count("\x00") != len(texts):  # a value holds NUL itself: the split would not give the cells back
        return [_neutralise(value) if value else value for value in values]
    for prefix in _FORMULA_PREFIXES:  # str.replace, unlike re.sub with a template, stays in C per match
        joined = joined.replace("\x00" + prefix, "\x00'" + prefix)
    return joined.split("\x00")[1:]


def _number_column(values: tuple[Any, ...], *, has_none: bool) -> Sequence[Cell]:
    # repr is shortest round-trip already; only scientific, non-finite and integral (".0")
    # reprs need more. The reprs are handed to csv.writer as text, which spares it a second
    # repr per float (float repr is the dearest step of writing a number column).
    reprs = "|".join(map(repr, filter(_is_present, values) if has_none else values)) + "|"
    if "e" in reprs or "n" in reprs or "-0.0|" in reprs:  # scientific, nan, inf; "-" only starts a repr
        return [_format_cell(value) for value in values]
    # Integral values lose their ".0", as in format_float, in two C-level passes.
    cells = reprs.replace(".0|", "|").split("|")
    if not has_none:
        return cells[:-1]
    texts = iter(cells)
    return [None if value is None else next(texts) for value in values]


def _columns_of(rows: Sequence[Sequence[Any]], width: int) -> list[tuple[Any, ...]]:
    lengths = set(map(len, rows))
    if lengths != {width}:
        wrong = next(length for length in lengths if length != width)
        raise ValueError(f"a row has {wrong} values for {width} columns")
    return list(zip(*rows, strict=True))


def _as_sequence(rows: Iterable[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    return rows if isinstance(rows, list | tuple) else list(rows)


class RowEncoder(Protocol):
    mime_type: str
    file_extension: str

    def header(self) -> bytes:
        """Bytes that start the file (before the first batch)."""
        ...

    def encode(self, rows: Iterable[Sequence[Any]]) -> bytes:
        """One batch of rows, e.g. an upstream page, as one chunk of the file."""
        ...


class CsvEncoder:
    """RFC 4180 CSV: UTF-8 without BOM, CRLF line ends, minimal quoting, a header row."""

    mime_type = CSV_MIME_TYPE
    file_extension = CSV_EXTENSION

    def __init__(self, columns: Sequence[str]) -> None:
        self._columns = tuple(columns)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def _drain(self) -> bytes:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        # Strict UTF-8: a lone surrogate raises UnicodeEncodeError, a ValueError (bad data).
        return text.encode("utf-8")

    def header(self) -> bytes:
        # Column names are neutralised too: a header cell is a spreadsheet cell like any other.
        self._writer.writerow([_neutralise(name) for name in self._columns])
        return self._drain()

    def encode(self, rows: Iterable[Sequence[Any]]) -> bytes:
        batch = _as_sequence(rows)
        if not batch:
            return b""
        columns = _columns_of(batch, len(self._columns))
        changed = False
        for index, name in enumerate(self._columns):
            cells = _csv_column(columns[index], name)
            if cells is not None:
                columns[index] = cells  # type: ignore[call-overload]
                changed = True
        self._writer.writerows(zip(*columns, strict=True) if changed else batch)
        return self._drain()


class NdjsonEncoder:
    """NDJSON: one JSON object per row, keys in column order, each line ending in "\\n".

    No formula neutralisation here: NDJSON is read by programs, not opened in spreadsheets,
    and a prefixed quote would change the value a program reads.
    """

    mime_type = NDJSON_MIME_TYPE
    file_extension = NDJSON_EXTENSION

    def __init__(self, columns: Sequence[str]) -> None:
        self._columns = tuple(columns)

    def header(self) -> bytes:
        return b""

    def _check(self, columns: list[tuple[Any, ...]]) -> None:
        # orjson writes NaN and infinities as null, which would silently change the data.
        for values, name in zip(columns, self._columns, strict=True):
            types = set(map(type, values))
            if float not in types:
                _check_types(types, name)
                continue
            if types <= _FLOATS:
                finite = all(map(math.isfinite, filter(_is_present, values)))
            else:
                _check_types(types, name)
                finite = all(math.isfinite(value) for value in values if type(value) is float)
            if not finite:
                raise ValueError(f"column {name!r} holds NaN or an infinite number: only finite numbers can go")

    def encode(self, rows: Iterable[Sequence[Any]]) -> bytes:
        batch = _as_sequence(rows)
        if not batch:
            return b""
        self._check(_columns_of(batch, len(self._columns)))
        names = self._columns  # every row's length was checked, so zip cannot drop a value
        dumps = orjson.dumps
        newline = orjson.OPT_APPEND_NEWLINE
        try:
            return b"".join([dumps(dict(zip(names, row, strict=False)), option=newline) for row in batch])
        except orjson.JSONEncodeError as error:
            # Types were checked above, so what is left is data: an integer beyond 64 bits or
            # a string that is not valid Unicode.
            raise ValueError(f"a row cannot be written as JSON: {error}") from error


_ENCODERS: dict[ExportFormat, type[CsvEncoder | NdjsonEncoder]] = {
    ExportFormat.CSV: CsvEncoder,
    ExportFormat.JSON: NdjsonEncoder,
}


def make_encoder(fmt: ExportFormat, columns: Sequence[str]) -> RowEncoder:
    names = tuple(columns)
    if any(type(name) is not str for name in names):
        raise TypeError(f"column names must be str: {names}")
    if not names:
        raise ValueError("a report needs at least one column")
    if len(set(names)) != len(names):
        # NDJSON keys would collapse and CSV readers keyed by name would lose a column.
        raise ValueError(f"column names must be unique: {names}")
    return _ENCODERS[ExportFormat(fmt)](names)


def mime_type(fmt: ExportFormat, *, gzip: bool = False) -> str:
    """The stored object's Content-Type. A gzip file is application/gzip, never the inner
    type with Content-Encoding: gzip (clients that auto-decompress would unzip it twice)."""
    return GZIP_MIME_TYPE if gzip else _ENCODERS[ExportFormat(fmt)].mime_type


def file_extension(fmt: ExportFormat, *, gzip: bool = False) -> str:
    extension = _ENCODERS[ExportFormat(fmt)].file_extension
    return extension + GZIP_EXTENSION if gzip else extension
