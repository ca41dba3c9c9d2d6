"""Slices read side by side come out in order, fail fast, stop when left, and estimate the report's size."""

import itertools
import random
import tempfile
import threading
import time
from datetime import date

import pytest

from report_export.core.models.common import JobType
from report_export.generation.encoding import encode_pages
from report_export.generation.progress import Progress
from report_export.generation.slices import sliced_pages
from report_export.generation.sources import Page, UpstreamBadData, UpstreamUnavailable
from report_export.generation.writers import make_encoder
from report_export.reports import Column, ColumnKind, ReportDefinition, Slicing, definition_for


def page(records, total=None, cursor=None):
    return Page(records=records, next_cursor=cursor, total=total, watermark=None)


def slice_of(number, pages=3, delay=0.0, fail_at=None, total=True):
    def read():
        for index in range(pages):
            if delay:
                time.sleep(random.uniform(0, delay))
            if index == fail_at:
                raise UpstreamUnavailable(f"slice {number} is down")
            yield page([{"slice": number, "page": index}], total=pages if total else None)

    return read


def test_pages_come_out_slice_after_slice_whatever_the_reading_order():
    random.seed(7)
    slices = [slice_of(number, pages=4, delay=0.01) for number in range(12)]

    out = [record for item in sliced_pages(slices, concurrency=5) for record in item.records]

    assert out == [{"slice": number, "page": index} for number in range(12) for index in range(4)]


def test_no_more_slices_than_allowed_are_read_at_once():
    lock, open_now, most = threading.Lock(), [0], [0]

    def slow_slice(number):
        def read():
            with lock:
                open_now[0] += 1
                most[0] = max(most[0], open_now[0])
            try:
                for index in range(3):
                    time.sleep(0.005)
                    yield page([(number, index)])
            finally:
                with lock:
                    open_now[0] -= 1

        return read

    list(sliced_pages([slow_slice(number) for number in range(10)], concurrency=3))

    assert 1 < most[0] <= 3


def test_a_later_slice_failing_stops_the_read_without_waiting_for_the_earlier_ones():
    started = time.monotonic()
    release_first = threading.Event()

    def stuck_first():
        yield page([{"first": 0}])
        release_first.wait(10)  # the slice being written hangs: the failure must still come through
        yield page([{"first": 1}])

    slices = [stuck_first, slice_of(1), slice_of(2, fail_at=1)]
    out = []
    with pytest.raises(UpstreamUnavailable, match="slice 2 is down"):
        for item in sliced_pages(slices, concurrency=3):
            out.extend(item.records)
    release_first.set()

    assert out in ([], [{"first": 0}])  # the failure may come before or after the page already read
    assert time.monotonic() - started < 5


def test_leaving_early_stops_every_slice_after_the_page_it_is_on():
    pulled = []

    def endless(number):
        def read():
            index = 0
            while True:
                pulled.append(number)
                yield page([(number, index)])
                index += 1

        return read

    pages = sliced_pages([endless(number) for number in range(4)], concurrency=4, pages_ahead=2)
    for _ in range(5):
        next(pages)
    pages.close()
    time.sleep(0.6)
    settled = len(pulled)
    time.sleep(0.6)

    assert len(pulled) == settled, "slice threads kept reading after the consumer left"
    assert threading.active_count() < 20


def test_the_total_is_estimated_for_the_whole_report_and_exact_once_every_slice_is_known():
    totals = [item.total for item in sliced_pages([slice_of(number, pages=3) for number in range(4)], concurrency=1)]

    # One slice known (3 records) stands for four; the estimate never falls below what was written.
    assert totals[0] == 12
    assert totals[-1] == 12
    written = range(1, 13)
    assert all(total >= rows for total, rows in zip(totals, written, strict=True))


def test_without_upstream_totals_the_size_is_estimated_from_the_slices_already_written():
    pages = sliced_pages([slice_of(number, total=False) for number in range(3)], concurrency=2)

    # Nothing is known while the first slice is written; then each finished slice stands for the rest.
    assert [item.total for item in pages] == [None, None, None, 9, 9, 9, 9, 9, 9]


def test_overlapping_slices_fail_the_order_check_instead_of_writing_another_file():
    definition = definition_for(JobType.KPI_FEEDING_EXPORT)
    record = dict.fromkeys(definition.column_names)

    def day(text, ids):
        def read():
            yield page([{**record, **_valid_kpi(definition), "date": text, "id": identifier} for identifier in ids])

        return read

    slices = [day("2025-01-01", ["a", "b"]), day("2025-01-01", ["b", "c"])]  # the second repeats "b"
    encoder = make_encoder("csv", definition.column_names)
    with pytest.raises(UpstreamBadData, match="out of order or repeated"):
        encode_pages(definition, sliced_pages(slices, concurrency=2), encoder, lambda chunk: None, lambda *_: None)


def _valid_kpi(definition):
    values = {
        ColumnKind.STRING: "x",
        ColumnKind.INTEGER: 1,
        ColumnKind.DECIMAL: 1.5,
        ColumnKind.DATE: "2025-01-01",
        ColumnKind.DATETIME: "2025-01-01T00:00:00.000Z",
        ColumnKind.BOOLEAN: True,
    }
    return {column.field: values[column.kind] for column in definition.columns}


class _Job:
    def __init__(self, start, end):
        self.start_date, self.end_date = start, end


def _sliced_definition(slicing: Slicing, *, sort_key: tuple[str, ...]) -> ReportDefinition:
    return ReportDefinition(
        job_type=JobType.FEED_INTAKE_EXPORT,
        version=1,
        service="feed",
        path="/x",
        columns=(Column("id", ColumnKind.STRING), Column("at", ColumnKind.DATETIME)),
        sort_key=sort_key,
        title="t",
        slicing=slicing,
    )


@pytest.mark.parametrize(
    ("slicing", "start", "end", "expected"),
    [
        (Slicing.DAYS, date(2025, 1, 30), date(2025, 2, 2), 4),
        (Slicing.DAYS, date(2025, 1, 1), date(2025, 1, 1), 1),
        (Slicing.WEEKS, date(2025, 1, 1), date(2025, 1, 31), 5),
        (Slicing.WEEKS, date(2024, 1, 1), date(2024, 12, 31), 53),
    ],
)
def test_a_period_splits_into_consecutive_slices_that_cover_it_exactly(slicing, start, end, expected):
    definition = _sliced_definition(slicing, sort_key=("at", "id"))

    periods = definition.slices(_Job(start, end))

    assert len(periods) == expected
    assert periods[0][0] == start and periods[-1][1] == end
    assert all(b[0].toordinal() == a[1].toordinal() + 1 for a, b in itertools.pairwise(periods))
    assert all(first <= last for first, last in periods)


def test_a_report_without_a_period_or_slicing_is_read_whole():
    definition = definition_for(JobType.FEED_INTAKE_EXPORT)
    assert definition.slices(_Job(None, None)) == []
    assert definition.slices(_Job(date(2025, 1, 1), date(2025, 1, 3))) != []


def test_slicing_needs_a_date_as_the_first_sort_column():
    with pytest.raises(ValueError, match="slicing needs a date"):
        _sliced_definition(Slicing.DAYS, sort_key=("id", "at"))


def test_progress_never_goes_back_when_the_estimated_total_grows():
    written = []

    def checkpoint(claimed, changes):
        written.append(changes["progress_pct"])
        return claimed

    progress = Progress(None, checkpoint, interval_seconds=0, clock=time.monotonic)
    for rows, total in [(10, 20), (15, 60), (30, 60), (40, 45)]:
        progress.page_done(rows, total)

    assert written == [50, 50, 50, 88]


@pytest.fixture
def spill_files(monkeypatch):
    opened = []
    real_temporary_file = tempfile.TemporaryFile

    def tracked(*args, **kwargs):
        spill = real_temporary_file(*args, **kwargs)
        opened.append(spill)
        return spill

    monkeypatch.setattr(tempfile, "TemporaryFile", tracked)
    return opened


def counted(number, read, *, delay=0.0):
    def pages():
        for index in range(10):
            if delay:
                time.sleep(delay)
            read[number] += 1
            yield page([{"slice": number, "page": index, "text": 'é,"x"', "n": 1.5e-7}], total=10)

    return pages


def test_while_the_writer_waits_for_pages_the_slices_ahead_read_to_their_end_and_spill_to_disk(spill_files):
    read = dict.fromkeys(range(4), 0)
    slices = [counted(0, read, delay=0.05)] + [counted(number, read) for number in (1, 2, 3)]  # the first is slow

    seen_on_arrival, out = {}, []
    for item in sliced_pages(slices, concurrency=4, pages_ahead=1):
        record = item.records[0]
        if record["page"] == 0:
            seen_on_arrival[record["slice"]] = read[record["slice"]]
        out.append(record)

    assert out == [
        {"slice": number, "page": index, "text": 'é,"x"', "n": 1.5e-7} for number in range(4) for index in range(10)
    ]
    assert all(seen_on_arrival[number] == 10 for number in (1, 2, 3)), seen_on_arrival
    assert spill_files, "the pages beyond the one kept in memory should have gone to a spill file"
    assert all(spill.closed for spill in spill_files)


def test_when_the_writer_is_what_is_slow_nothing_is_spilled(spill_files):
    read = dict.fromkeys(range(4), 0)
    out = []
    for item in sliced_pages([counted(number, read) for number in range(4)], concurrency=4, pages_ahead=1):
        time.sleep(0.01)  # the writer is the bottleneck: reading further ahead would gain nothing
        out.extend(item.records)

    assert len(out) == 40
    assert spill_files == []


def test_with_no_room_on_disk_the_slices_ahead_wait_instead_of_spilling(monkeypatch):
    opened = []
    monkeypatch.setattr(tempfile, "TemporaryFile", lambda *a, **k: opened.append(1) or pytest.fail("spilled"))

    out = [
        record
        for item in sliced_pages([slice_of(number, pages=6) for number in range(5)], concurrency=5, spill_budget=0)
        for record in item.records
    ]

    assert out == [{"slice": number, "page": index} for number in range(5) for index in range(6)]
    assert opened == []
