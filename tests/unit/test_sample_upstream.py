"""The sample upstream's `rows_per_day` data: any page from its cursor alone, and any period's records
exactly those of its days, so that a report read in slices is the report read whole."""

from __future__ import annotations

import time
from datetime import date, timedelta

from local.upstream import UpstreamKnobs, _daily_records, _daily_total
from report_export.core.models.common import JobType
from report_export.reports import REPORT_DEFINITIONS, definition_for

FEED = definition_for(JobType.FEED_INTAKE_EXPORT)


def query(start: str, end: str, **scope: str) -> dict[str, str]:
    return {"tenant_id": "t1", "start_date": start, "end_date": end, **scope}


def test_a_narrower_period_answers_exactly_the_records_of_its_days():
    knobs = UpstreamKnobs(rows_per_day=7)
    whole = _daily_records(FEED, query("2025-01-01", "2025-01-10"), knobs, 0, 10**9)
    days = [
        record
        for day in range(10)
        for record in _daily_records(
            FEED,
            query(*(str(date(2025, 1, 1) + timedelta(days=day)),) * 2),
            knobs,
            0,
            10**9,
        )
    ]

    assert len(whole) == 70 == _daily_total(query("2025-01-01", "2025-01-10"), knobs)
    assert days == whole


def test_every_report_type_comes_out_in_its_sort_order_across_days():
    knobs = UpstreamKnobs(rows_per_day=50)
    for definition in REPORT_DEFINITIONS.values():
        rows = definition.rows(_daily_records(definition, query("2025-01-30", "2025-02-02"), knobs, 0, 10**9))
        assert definition.first_out_of_order(rows, None) is None, definition.job_type


def test_a_page_deep_in_a_ten_million_row_report_costs_what_the_first_page_costs():
    knobs = UpstreamKnobs(rows_per_day=322_581)  # January: 10,000,011 rows
    january = query("2025-01-01", "2025-01-31", farm_id="farm-9")

    def page_at(offset: int) -> tuple[list[dict], float]:
        started = time.perf_counter()
        records = _daily_records(FEED, january, knobs, offset, offset + 1000)
        return records, time.perf_counter() - started

    _, first_cost = min((page_at(0) for _ in range(3)), key=lambda page: page[1])
    last, last_cost = min((page_at(10_000_011 - 1000) for _ in range(3)), key=lambda page: page[1])

    assert _daily_total(january, knobs) == 10_000_011
    assert last[-1]["id"] == "rec-20250131-00322580" and last[-1]["farm_id"] == "farm-9"
    assert last[-1]["recorded_at"].startswith("2025-01-31T23:59:59")
    # Generous: the point is O(page), not O(report) (a report-sized walk would cost 10,000 times more).
    assert last_cost < first_cost * 20


def test_the_same_request_gives_the_same_records_and_another_data_version_other_values():
    knobs = UpstreamKnobs(rows_per_day=20)
    january = query("2025-01-01", "2025-01-31")
    first = _daily_records(FEED, january, knobs, 100, 200)

    assert _daily_records(FEED, january, knobs, 100, 200) == first
    changed = _daily_records(FEED, january, UpstreamKnobs(rows_per_day=20, data_version=2), 100, 200)
    assert [record["id"] for record in changed] == [record["id"] for record in first]
    assert changed != first
