from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from report_export.core.models.common import format_timestamp
from report_export.core.models.jobs import CreateJobRequest


def request(**fields):
    return CreateJobRequest.model_validate({"job_type": "KPI_FEEDING_EXPORT", **fields})


def test_format_defaults_to_csv_and_period_is_optional():
    parsed = request()

    assert parsed.format == "csv"
    assert parsed.period_days is None


def test_period_days_counts_both_ends():
    assert request(start_date="2025-01-01", end_date="2025-01-31").period_days == 31


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"start_date": "2025-02-01", "end_date": "2025-01-31"}, "end_date must be on or after start_date"),
        ({"start_date": "2025-02-01"}, "must be given together"),
        ({"start_date": "2025-1-1", "end_date": "2025-01-31"}, "YYYY-MM-DD"),
        ({"start_date": 1735689600, "end_date": "2025-01-31"}, "YYYY-MM-DD"),
        ({"start_date": "2025-01-01T00:00:00", "end_date": "2025-01-31"}, "YYYY-MM-DD"),
        ({"start_date": "2025-02-30", "end_date": "2025-03-01"}, "YYYY-MM-DD"),
        ({"format": "xlsx"}, "'csv' or 'json'"),
        ({"job_type": "PAYROLL_EXPORT"}, "FEED_INTAKE_EXPORT"),
        ({"farm_id": "farm/../../etc"}, "pattern"),
        ({"farm_id": "x" * 65}, "pattern"),
        ({"idempotency_key": "has spaces"}, "pattern"),
        ({"idempotency_key": "k" * 129}, "pattern"),
        ({"filters": {f"f{index}": index for index in range(21)}}, "at most 20 filters"),
        ({"filters": {"note": ["x" * 250] * 20}}, "4096 bytes"),
        ({"filters": {"bad-name": "x"}}, "pattern"),
        ({"filters": {"nested": {"a": 1}}}, "filters.nested"),
        ({"filters": {"tenant_id": "tenant-b"}}, "tenant_id cannot be a filter"),
        ({"filters": {"cursor": "x", "sort": "id"}}, "cursor, sort cannot be a filter"),
        ({"unexpected": True}, "Extra inputs"),
    ],
)
def test_invalid_requests_are_rejected_with_a_reason(fields, fragment):
    with pytest.raises(ValidationError) as raised:
        request(**fields)

    assert fragment in str(raised.value)


def test_parameters_hash_ignores_the_key_the_tenant_hint_and_field_order():
    one = request(start_date="2025-01-01", end_date="2025-01-31", filters={"a": 1, "b": "x"}, idempotency_key="k1")
    two = CreateJobRequest.model_validate(
        {
            "filters": {"b": "x", "a": 1},
            "end_date": "2025-01-31",
            "format": "csv",
            "start_date": "2025-01-01",
            "job_type": "KPI_FEEDING_EXPORT",
            "idempotency_key": "k2",
            "tenant_id": "t1",
        }
    )

    assert one.parameters_hash() == two.parameters_hash()


@pytest.mark.parametrize(
    "change", [{"format": "json"}, {"end_date": "2025-01-30"}, {"filters": {"a": 2, "b": "x"}}, {"barn_id": "b1"}]
)
def test_parameters_hash_changes_with_any_parameter(change):
    base = {"start_date": "2025-01-01", "end_date": "2025-01-31", "filters": {"a": 1, "b": "x"}}

    assert request(**base).parameters_hash() != request(**{**base, **change}).parameters_hash()


def test_dates_parse_to_calendar_dates():
    parsed = request(start_date="2024-02-29", end_date="2024-03-01")

    assert (parsed.start_date, parsed.end_date) == (date(2024, 2, 29), date(2024, 3, 1))


def test_timestamps_have_milliseconds_and_zulu():
    assert format_timestamp(datetime(2025, 2, 4, 12, 0, 0, 987654, tzinfo=UTC)) == "2025-02-04T12:00:00.987Z"


def test_a_timestamp_before_the_year_1000_keeps_four_digits_and_reads_back():
    from datetime import UTC, datetime

    from report_export.core.models.common import format_timestamp

    text = format_timestamp(datetime(999, 6, 1, 12, 30, tzinfo=UTC))

    assert text == "0999-06-01T12:30:00.000Z"
    assert datetime.fromisoformat(text) == datetime(999, 6, 1, 12, 30, tzinfo=UTC)
