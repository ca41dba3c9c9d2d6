"""The row-by-row comparison of an original and a re-exported file (report_export.comparison).

Files are written with the real encoders, so they are byte for byte what the generator stores.
"""

from __future__ import annotations

import gc
import io
import tracemalloc
from collections.abc import Iterator

import pytest

from report_export.core.models.common import ExportFormat, JobType
from report_export.generation.compression import GzipCompressor
from report_export.generation.writers import make_encoder
from report_export.reexports.comparison import ReportStream, compare_reports
from report_export.reports import definition_for

DEFINITION = definition_for(JobType.FEED_INTAKE_EXPORT)  # sorted by (recorded_at, id)


def row(index: int, *, quantity: float = 12.5, ident: str | None = None, note: str | None = None) -> tuple:
    return (
        ident or f"rec-{index:06d}",
        f"2025-01-01T{index // 3600 % 24:02d}:{index // 60 % 60:02d}:{index % 60:02d}.000Z",
        "farm-1",
        "barn-1",
        None,
        "starter",
        quantity,
        "MANUAL",
        note,
    )


def encode(rows, fmt: ExportFormat = ExportFormat.CSV, *, gzipped: bool = False) -> bytes:
    encoder = make_encoder(fmt, DEFINITION.column_names)
    body = encoder.header() + encoder.encode(list(rows))
    if gzipped:
        compressor = GzipCompressor()
        body = compressor.compress(body) + compressor.flush()
    return body


def stream(body: bytes, fmt: ExportFormat = ExportFormat.CSV, *, gzipped: bool = False, label: str = "new"):
    return ReportStream(body=io.BytesIO(body), format=fmt, gzipped=gzipped, label=label)


def compare(original: bytes, new: bytes, fmt: ExportFormat = ExportFormat.CSV, **kwargs):
    return compare_reports(stream(original, fmt, label="original"), stream(new, fmt, label="new"), DEFINITION, **kwargs)


def key_of(index: int) -> dict:
    full = row(index)
    return {"recorded_at": full[1], "id": full[0]}


def test_identical_files_have_only_unchanged_rows():
    body = encode(row(index) for index in range(100))

    summary = compare(body, body)

    assert summary.compared is True
    assert (summary.only_in_original, summary.only_in_new, summary.changed, summary.unchanged) == (0, 0, 0, 100)
    assert summary.first_keys.model_dump() == {"only_in_original": [], "only_in_new": [], "changed": []}


def test_rows_are_paired_by_key_and_each_difference_is_counted_with_its_key():
    original = [row(index) for index in range(1, 11)]
    new = [row(0)] + [row(index, quantity=99.0) if index == 5 else row(index) for index in range(1, 11) if index != 3]
    new.append(row(11))

    summary = compare(encode(original), encode(new))

    assert summary.compared is True
    assert (summary.only_in_original, summary.only_in_new, summary.changed, summary.unchanged) == (1, 2, 1, 8)
    assert summary.first_keys.only_in_original == [key_of(3)]
    assert summary.first_keys.only_in_new == [key_of(0), key_of(11)]
    assert summary.first_keys.changed == [key_of(5)]


def test_only_the_first_keys_of_each_kind_are_kept_in_sort_order():
    original = [row(index) for index in range(0, 200, 2)]
    new = [row(index) for index in range(1, 200, 2)]

    summary = compare(encode(original), encode(new), sample_size=5)

    assert (summary.only_in_original, summary.only_in_new, summary.unchanged) == (100, 100, 0)
    assert summary.first_keys.only_in_original == [key_of(index) for index in (0, 2, 4, 6, 8)]
    assert summary.first_keys.only_in_new == [key_of(index) for index in (1, 3, 5, 7, 9)]


def test_a_change_in_a_nullable_cell_counts_as_changed():
    original = [row(index) for index in range(5)]
    new = [row(index, note="corrected") if index == 2 else row(index) for index in range(5)]

    summary = compare(encode(original), encode(new))

    assert (summary.changed, summary.unchanged) == (1, 4)
    assert summary.first_keys.changed == [key_of(2)]


@pytest.mark.parametrize(("original_gzip", "new_gzip"), [(True, True), (True, False), (False, True)])
def test_gzip_files_are_read_on_the_fly_whichever_side_they_are(original_gzip, new_gzip):
    rows = [row(index) for index in range(300)]
    changed = [row(index, quantity=1.0) if index == 150 else row(index) for index in range(300)]

    summary = compare_reports(
        stream(encode(rows, gzipped=original_gzip), gzipped=original_gzip, label="original"),
        stream(encode(changed, gzipped=new_gzip), gzipped=new_gzip),
        DEFINITION,
    )

    assert (summary.compared, summary.changed, summary.unchanged) == (True, 1, 299)


def test_ndjson_files_are_compared_like_csv():
    original = [row(index) for index in range(1, 6)]
    new = [row(index, quantity=7.25) if index == 4 else row(index) for index in range(1, 7)]

    summary = compare(encode(original, ExportFormat.JSON), encode(new, ExportFormat.JSON), ExportFormat.JSON)

    assert (summary.compared, summary.only_in_new, summary.changed, summary.unchanged) == (True, 1, 1, 4)
    assert summary.first_keys.changed == [key_of(4)]


def test_keys_neutralised_against_spreadsheet_formulas_keep_their_sort_order():
    # "'-a" sorts before "(b" as text, but the generator sorted "(b" < "-a": the quote is not part of the key.
    original = [row(1, ident="(b"), row(1, ident="-a")]
    new = [row(1, ident="(b"), row(1, ident="-a", quantity=2.0)]

    summary = compare(encode(original), encode(new))

    assert (summary.compared, summary.changed, summary.unchanged) == (True, 1, 1)
    assert summary.first_keys.changed == [{"recorded_at": row(1)[1], "id": "'-a"}]


def test_header_only_files_compare_as_empty():
    summary = compare(encode([]), encode([]))

    assert (summary.compared, summary.unchanged, summary.only_in_new) == (True, 0, 0)


def test_files_of_different_formats_are_not_compared():
    summary = compare_reports(
        stream(encode([row(1)]), ExportFormat.CSV, label="original"),
        stream(encode([row(1)], ExportFormat.JSON), ExportFormat.JSON),
        DEFINITION,
    )

    assert summary.compared is False
    assert summary.reason.startswith("the files have different formats (csv and json)")
    assert summary.only_in_new is None and summary.first_keys is None


def test_files_with_different_columns_are_not_compared():
    other = b"id,recorded_at,farm_id\r\nrec-1,2025-01-01T00:00:00.000Z,farm-1\r\n"

    summary = compare(encode([row(1)]), other)

    assert (summary.compared, summary.reason) == (
        False,
        "the files have different columns (the report definition changed)",
    )


def test_a_file_out_of_sort_order_is_not_compared():
    body = encode([row(2), row(1)])

    summary = compare(encode([row(1), row(2)]), body)

    assert (summary.compared, summary.reason) == (False, "the new file is not in the report's sort order")


def test_a_file_that_is_not_what_it_claims_is_not_compared():
    summary = compare_reports(
        stream(b"this is not gzip", gzipped=True, label="original"), stream(encode([row(1)])), DEFINITION
    )

    assert (summary.compared, summary.reason) == (False, "the original file could not be read")


class _LazyCsv:
    """A CSV file produced while it is read, so the source itself holds no more than one chunk."""

    def __init__(self, rows: int, *, changed_every: int = 0) -> None:
        self._chunks = self._generate(rows, changed_every)
        self._pending = b""

    def _generate(self, rows: int, changed_every: int) -> Iterator[bytes]:
        encoder = make_encoder(ExportFormat.CSV, DEFINITION.column_names)
        yield encoder.header()
        for start in range(0, rows, 1000):
            yield encoder.encode(
                [
                    row(index, quantity=3.0 if changed_every and index % changed_every == 0 else 12.5)
                    for index in range(start, min(start + 1000, rows))
                ]
            )

    def read(self, size: int = -1) -> bytes:
        while len(self._pending) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._pending += chunk
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


def _peak_bytes(rows: int) -> tuple[int, object]:
    gc.collect()
    tracemalloc.start()
    try:
        summary = compare_reports(
            ReportStream(_LazyCsv(rows), ExportFormat.CSV, False, "original"),
            ReportStream(_LazyCsv(rows, changed_every=7), ExportFormat.CSV, False, "new"),
            DEFINITION,
        )
        return tracemalloc.get_traced_memory()[1], summary
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_whatever_the_row_count():
    small_peak, small = _peak_bytes(5_000)
    large_peak, large = _peak_bytes(50_000)

    assert (small.changed, large.changed) == (715, 7143)
    assert large.unchanged == 50_000 - 7143
    # Ten times the rows, about the same memory: nothing grows with the file.
    assert large_peak < small_peak * 1.5 + 256 * 1024
    assert large_peak < 8 * 1024 * 1024


@pytest.mark.parametrize("fmt", [ExportFormat.CSV, ExportFormat.JSON])
def test_a_damaged_original_without_line_breaks_is_refused_with_flat_memory(fmt):
    header = encode([], fmt)
    damaged = header + b"\0" * (20 * 1024 * 1024)  # a zero-filled file: one endless "line"
    new = encode((row(index) for index in range(10)), fmt)
    gc.collect()
    tracemalloc.start()
    try:
        summary = compare(damaged, new, fmt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert summary.compared is False
    assert "longer than" in summary.reason
    # The damaged file itself is 20 MiB in memory here; reading it adds at most about one line.
    assert peak < 4 * 1024 * 1024


def test_a_comparison_past_its_time_budget_stops_and_says_so():
    body = encode(row(index) for index in range(20_000))
    ticks = iter(range(1_000_000))

    summary = compare(body, body, time_budget_seconds=2, clock=lambda: next(ticks))

    assert summary.compared is False
    assert "time budget" in summary.reason


def test_a_comparison_within_its_time_budget_completes():
    body = encode(row(index) for index in range(20_000))

    summary = compare(body, body, time_budget_seconds=60)

    assert (summary.compared, summary.unchanged) == (True, 20_000)
