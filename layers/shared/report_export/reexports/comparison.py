"""How a re-exported file differs from the original, row by row, with flat memory.

Both files of a report type are written in the type's sort order (the generator refuses rows
out of order), so one pass over each, side by side, pairs the rows up by their sort key: a
merge join. Only the two current rows, the counts and a few sample keys are held, whatever
the files' sizes. The files are read as byte streams (an S3 StreamingBody works as is) and
gunzipped on the fly when they are gzip files.
"""

from __future__ import annotations

import csv
import gzip
import io
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson
from botocore.exceptions import ClientError

from report_export.aws.s3 import open_object
from report_export.core.models.common import GZIP_MIME_TYPE, ExportFormat, FileReference
from report_export.core.models.jobs import Job
from report_export.core.models.reexports import ComparisonSummary, KeySamples, Reexport
from report_export.core.observability import logger
from report_export.reports import ColumnKind, ReportDefinition, definition_for

SAMPLE_KEYS = 5
# The comparison runs in the generator after the file is written, inside the same Lambda timeout:
# past this budget it gives up (compared=false) rather than risk the hand-over of a good file.
TIME_BUDGET_SECONDS = 120.0
_READ_SIZE = 256 * 1024
# A report row is a few KiB at most (4096 characters per text cell); a "line" longer than this
# is a damaged file, and reading it whole would let a corrupt original exhaust the memory.
MAX_LINE_BYTES = 1024 * 1024
_CLOCK_CHECK_EVERY = 4096
# The writer puts a quote before text that a spreadsheet would run as a formula; the key's order is
# that of the value without it.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

Key = tuple[tuple[bool, Any], ...]


class NotComparable(Exception):
    """The files cannot be compared row by row; the message says why, for the summary."""


@dataclass(frozen=True, slots=True)
class ReportStream:
    """One report file as a byte stream, with what it takes to read it."""

    body: BinaryIO
    format: ExportFormat
    gzipped: bool
    label: str  # "original" or "new", for messages


@dataclass
class _Tally:
    sample_size: int
    counts: dict[str, int] = field(
        default_factory=lambda: {"only_in_original": 0, "only_in_new": 0, "changed": 0, "unchanged": 0}
    )
    samples: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {"only_in_original": [], "only_in_new": [], "changed": []}
    )

    def add(self, kind: str, shown_key: Callable[[], dict[str, Any]] | None = None) -> None:
        self.counts[kind] += 1
        if shown_key is not None and len(self.samples[kind]) < self.sample_size:
            self.samples[kind].append(shown_key())


def compare_reports(
    original: ReportStream,
    new: ReportStream,
    definition: ReportDefinition,
    *,
    sample_size: int = SAMPLE_KEYS,
    time_budget_seconds: float = TIME_BUDGET_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> ComparisonSummary:
    """Rows only in the original, only in the new file, changed (same key, other cells differ) and
    unchanged, with the first `sample_size` keys of each kind. Never raises for bad or different
    files: the summary then says why they were not compared."""
    if original.format is not new.format:
        return _not_compared(
            f"the files have different formats ({original.format.value} and {new.format.value}); "
            "only files of one format are compared row by row"
        )
    try:
        return _merge_join(original, new, definition, sample_size, deadline=clock() + time_budget_seconds, clock=clock)
    except NotComparable as reason:
        return _not_compared(str(reason))


def _merge_join(
    original: ReportStream,
    new: ReportStream,
    definition: ReportDefinition,
    sample_size: int,
    *,
    deadline: float,
    clock: Callable[[], float],
) -> ComparisonSummary:
    original_rows = _KeyedRows(original, definition)
    new_rows = _KeyedRows(new, definition)
    if original_rows.columns != new_rows.columns:
        raise NotComparable("the files have different columns (the report definition changed)")
    tally = _Tally(sample_size)
    left, right = original_rows.next(), new_rows.next()
    steps = 0
    while left is not None or right is not None:
        steps += 1
        if steps % _CLOCK_CHECK_EVERY == 0 and clock() > deadline:
            raise NotComparable(f"the comparison stopped after its time budget ({steps} rows read)")
        if left is not None and (right is None or left[0] < right[0]):
            tally.add("only_in_original", original_rows.shown_key(left[1]))
            left = original_rows.next()
        elif right is not None and (left is None or right[0] < left[0]):
            tally.add("only_in_new", new_rows.shown_key(right[1]))
            right = new_rows.next()
        elif left is not None and right is not None:
            if left[1] == right[1]:
                tally.add("unchanged")
            else:
                tally.add("changed", new_rows.shown_key(right[1]))
            left, right = original_rows.next(), new_rows.next()
    return ComparisonSummary(compared=True, **tally.counts, first_keys=KeySamples(**tally.samples))


def _not_compared(reason: str) -> ComparisonSummary:
    return ComparisonSummary(compared=False, reason=reason)


class _KeyedRows:
    """(sort key, row) pairs of one file, in order; NotComparable when the file cannot be read or is
    not in the report's sort order."""

    def __init__(self, stream: ReportStream, definition: ReportDefinition) -> None:
        self._label = stream.label
        binary = _binary_reader(stream.body, gzipped=stream.gzipped)
        self._rows: Iterator[tuple[Any, ...]]
        try:
            if stream.format is ExportFormat.CSV:
                self.columns, self._rows = _csv_rows(binary)
            else:
                self.columns, self._rows = _ndjson_rows(binary)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error, orjson.JSONDecodeError):
            raise NotComparable(f"the {self._label} file could not be read") from None
        kinds = {column.name: column.kind for column in definition.columns}
        missing = [name for name in definition.sort_key if name not in self.columns]
        if self.columns and missing:
            raise NotComparable(f"the {self._label} file has no column {missing[0]} to match rows by")
        self._key_positions = tuple(self.columns.index(name) for name in definition.sort_key) if self.columns else ()
        self._key_names = definition.sort_key
        self._key_kinds = tuple(kinds.get(name, ColumnKind.STRING) for name in definition.sort_key)
        self._key_columns = tuple(zip(self._key_kinds, self._key_positions, strict=True))
        self._named_positions = tuple(zip(self._key_names, self._key_positions, strict=True))
        self._typed = _csv_key_value if stream.format is ExportFormat.CSV else _json_key_value
        self._previous: Key | None = None

    def next(self) -> tuple[Key, tuple[Any, ...]] | None:
        try:
            row = next(self._rows, None)
        except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error, orjson.JSONDecodeError):
            raise NotComparable(f"the {self._label} file could not be read") from None
        if row is None:
            return None
        if len(row) != len(self.columns):
            raise NotComparable(f"the {self._label} file has a row that does not fit its columns")
        key = tuple(
            self._typed(kind, row[position])
            for kind, position in zip(self._key_kinds, self._key_positions, strict=True)
        )
        if self._previous is not None and key <= self._previous:
            raise NotComparable(f"the {self._label} file is not in the report's sort order")
        self._previous = key
        return key, row

    def shown_key(self, row: tuple[Any, ...]) -> Callable[[], dict[str, Any]]:
        return lambda: {
            name: row[position] for name, position in zip(self._key_names, self._key_positions, strict=True)
        }


def _bounded_lines(binary: BinaryIO) -> Iterator[bytes]:
    while line := binary.readline(MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES:
            raise NotComparable(f"a line of the file is longer than {MAX_LINE_BYTES} bytes: the file is damaged")
        yield line


def _csv_rows(binary: BinaryIO) -> tuple[tuple[str, ...], Iterator[tuple[Any, ...]]]:
    # Line by bounded line; a quoted field that never closes is stopped by csv's own field size
    # limit (csv.Error), so neither can grow without bound.
    reader = csv.reader(line.decode("utf-8") for line in _bounded_lines(binary))
    header = tuple(next(reader, ()))
    return header, map(tuple, reader)


def _ndjson_rows(binary: BinaryIO) -> tuple[tuple[str, ...], Iterator[tuple[Any, ...]]]:
    def objects() -> Iterator[dict[str, Any]]:
        for line in _bounded_lines(binary):
            if line.strip():
                record = orjson.loads(line)
                if not isinstance(record, dict):
                    raise NotComparable("a line of the file is not a JSON object")
                yield record

    records = objects()
    first = next(records, None)
    if first is None:
        return (), iter(())
    columns = tuple(first)

    def rows() -> Iterator[tuple[Any, ...]]:
        yield tuple(first.values())
        for record in records:
            if tuple(record) != columns:
                raise NotComparable("the file's lines do not all have the same fields")
            yield tuple(record.values())

    return columns, rows()


def _csv_key_value(kind: ColumnKind, cell: str) -> tuple[bool, Any]:
    """A CSV cell as the value the generator sorted by (None first, then by value)."""
    if cell == "":
        return (False, None)
    try:
        if kind is ColumnKind.INTEGER:
            return (True, int(cell))
        if kind is ColumnKind.DECIMAL:
            return (True, float(cell))
    except ValueError:
        raise NotComparable("a key cell does not fit its column") from None
    if kind is ColumnKind.BOOLEAN:
        return (True, cell == "true")
    if kind is ColumnKind.STRING and cell.startswith("'") and cell[1:].startswith(_FORMULA_PREFIXES):
        return (True, cell[1:])
    return (True, cell)


def _json_key_value(_: ColumnKind, value: Any) -> tuple[bool, Any]:
    return (value is not None, value)


class _StreamReader(io.RawIOBase):
    """Any object with read(size) (an S3 StreamingBody) as a raw stream that io's buffers can wrap."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._source.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def file_rows(body: Any, report_format: ExportFormat, *, gzipped: bool) -> tuple[tuple[str, ...], Iterator[Any]]:
    """The columns and rows of a report file read from `body` as the generator writes that format; the
    readers' own errors (and NotComparable) when it is not one."""
    binary = _binary_reader(body, gzipped=gzipped)
    return _csv_rows(binary) if report_format is ExportFormat.CSV else _ndjson_rows(binary)


UNREADABLE_FILE_ERRORS = (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error, orjson.JSONDecodeError)


def _binary_reader(body: Any, *, gzipped: bool) -> BinaryIO:
    buffered = io.BufferedReader(_StreamReader(body), buffer_size=_READ_SIZE)
    if gzipped:
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered  # type: ignore[return-value]


class StoredFileComparer:
    """Compares a re-export's new file with the original, both read from the reports bucket. Never fails the
    job over its summary: matches_original already says the files differ, so a problem is only reported."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    def compare(self, record: Reexport, job: Job, new_file: FileReference) -> ComparisonSummary:
        original = record.original_file
        if original is None:
            return ComparisonSummary(compared=False, reason="the original has no file reference")
        try:
            original_body = open_object(self._s3, bucket=self._bucket, key=original.key)
        except ClientError:
            logger.exception("Reading the original file for the comparison failed")
            return ComparisonSummary(compared=False, reason="the files could not be read for comparison")
        if original_body is None:
            return ComparisonSummary(compared=False, reason="the original file no longer exists")
        try:
            new_body = open_object(self._s3, bucket=self._bucket, key=new_file.key)
            if new_body is None:
                raise FileNotFoundError(new_file.key)  # just written: reported below like any unreadable file
            try:
                return compare_reports(
                    ReportStream(
                        original_body,
                        ExportFormat(record.original_parameters.get("format", ExportFormat.CSV.value)),
                        _is_gzip(original),
                        "original",
                    ),
                    ReportStream(new_body, job.format, _is_gzip(new_file), "new"),
                    definition_for(job.job_type),
                )
            finally:
                new_body.close()
        except Exception:
            logger.exception("Comparing the re-export with the original failed")
            return ComparisonSummary(compared=False, reason="the files could not be read for comparison")
        finally:
            original_body.close()


def _is_gzip(file: FileReference) -> bool:
    return file.mime_type == GZIP_MIME_TYPE or file.key.endswith(".gz")
