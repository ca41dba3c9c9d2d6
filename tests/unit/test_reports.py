"""The report registry: one definition per job type, canonical values, a stable order, the upstream query."""

import math
from datetime import UTC, date, datetime

import pytest

from report_export.core.models.common import JobStatus, JobType
from report_export.core.models.jobs import Job
from report_export.core.settings import Settings
from report_export.reports import REPORT_DEFINITIONS, BadRecord, Column, ColumnKind, ReportDefinition, definition_for

K = ColumnKind
# The upstream services the settings can configure (a service URL per name).
UPSTREAM_SERVICES = set(
    Settings.model_validate(
        {
            "TABLE_NAME": "jobs",
            "GENERATE_QUEUE_URL": "queue",
            "SIGNING_SECRET_PARAMETER": "secret",
            **{f"{name}_SERVICE_URL": "http://upstream" for name in ("FEED", "TELEMETRY", "WEIGHVISION", "ACTIVITY")},
        }
    ).upstream_urls
)


def definition(*columns, sort_key=("id",), **overrides):
    options = {
        "job_type": JobType.FEED_INTAKE_EXPORT,
        "version": 1,
        "service": "feed",
        "path": "/api/v1/test",
        "columns": (Column("id", K.STRING), *columns),
        "sort_key": sort_key,
        "title": "Test report",
    }
    options.update(overrides)
    return ReportDefinition(**options)


def normalise(kind, value):
    return definition(Column("value", kind)).row({"id": "r1", "value": value})[1]


def job(**overrides):
    fields = {
        "id": "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f",
        "tenant_id": "tenant-a",
        "requested_by": "user-1",
        "job_type": JobType.FEED_INTAKE_EXPORT,
        "format": "csv",
        "status": JobStatus.QUEUED,
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
        "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    fields.update(overrides)
    return Job(**fields)


# --- the registry -----------------------------------------------------------------------------


@pytest.mark.parametrize("job_type", list(JobType))
def test_every_job_type_has_a_definition(job_type):
    found = definition_for(job_type)

    assert found.job_type is job_type
    assert found.version >= 1
    assert found.title
    assert found.service in UPSTREAM_SERVICES
    assert found.path.startswith("/")
    assert found.column_names[0] == "id"
    assert len(set(found.column_names)) == len(found.column_names)
    assert set(found.sort_key) <= set(found.column_names)
    assert found.sort_key[-1] == "id", "the id breaks ties, so the order is total"
    assert all(found.columns[found.column_names.index(name)].required for name in found.sort_key)


def test_the_registry_has_exactly_the_job_types():
    assert set(REPORT_DEFINITIONS) == set(JobType)
    assert len({found.path for found in REPORT_DEFINITIONS.values()}) == len(REPORT_DEFINITIONS)


def test_a_sort_key_that_is_not_a_column_is_refused_when_defined():
    with pytest.raises(ValueError, match="sort key"):
        definition(sort_key=("recorded_at", "id"))


# --- canonical values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-02T03:04:05.678+02:00", "2025-01-02T01:04:05.678Z"),
        ("2025-01-01T00:30:00+01:00", "2024-12-31T23:30:00.000Z"),
        ("2025-06-30T22:15:00-05:30", "2025-07-01T03:45:00.000Z"),
        ("2025-01-02T03:04:05Z", "2025-01-02T03:04:05.000Z"),
        ("2025-01-02T03:04:05+00:00", "2025-01-02T03:04:05.000Z"),
        ("2025-01-02T03:04:05.123999+00:00", "2025-01-02T03:04:05.123Z"),
        ("2025-01-02T03:04:05.1Z", "2025-01-02T03:04:05.100Z"),
    ],
)
def test_datetimes_become_utc_milliseconds_with_z(value, expected):
    assert normalise(K.DATETIME, value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2025-01-02T03:04:05", "time zone"),
        ("2025-01-02 03:04", "time zone"),
        ("yesterday", "ISO 8601"),
        ("2025-13-01T00:00:00Z", "ISO 8601"),
        (1735787045, "ISO 8601"),
        (True, "ISO 8601"),
    ],
)
def test_bad_datetimes_are_bad_records_naming_the_field(value, problem):
    with pytest.raises(BadRecord, match=rf"field 'value': .*{problem}"):
        normalise(K.DATETIME, value)


def test_the_same_moment_in_different_offsets_gives_the_same_text():
    moments = ["2025-03-30T01:30:00Z", "2025-03-30T03:30:00+02:00", "2025-03-29T20:30:00-05:00"]

    assert {normalise(K.DATETIME, moment) for moment in moments} == {"2025-03-30T01:30:00.000Z"}


@pytest.mark.parametrize("value", ["2025-01-31", "2024-02-29", "1999-12-31"])
def test_dates_stay_iso_dates(value):
    assert normalise(K.DATE, value) == value
    assert date.fromisoformat(normalise(K.DATE, value))


@pytest.mark.parametrize("value", ["2025-02-30", "2025-1-01", "20250101", "2025-01-01T00:00:00Z", 20250101, None])
def test_bad_dates_are_bad_records(value):
    with pytest.raises(BadRecord, match="field 'value'"):
        normalise(K.DATE, value)


@pytest.mark.parametrize(("value", "expected"), [(1.5, 1.5), (2, 2), (0, 0), (-0.25, -0.25), (1e-7, 1e-7)])
def test_decimals_keep_their_number(value, expected):
    result = normalise(K.DECIMAL, value)

    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize("value", [True, False, "1.5", math.nan, math.inf, -math.inf, [1], {"v": 1}])
def test_bad_decimals_are_bad_records(value):
    with pytest.raises(BadRecord, match="field 'value': expected a (finite )?number"):
        normalise(K.DECIMAL, value)


@pytest.mark.parametrize("value", [0, 7, -3, 10**15])
def test_integers_stay_integers(value):
    assert normalise(K.INTEGER, value) == value


@pytest.mark.parametrize("value", [3.0, 2.5, "3", True, False])
def test_bad_integers_are_bad_records(value):
    with pytest.raises(BadRecord, match="field 'value': expected a whole number"):
        normalise(K.INTEGER, value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_stay_booleans(value):
    assert normalise(K.BOOLEAN, value) is value


@pytest.mark.parametrize("value", ["true", "false", 1, 0, "yes"])
def test_bad_booleans_are_bad_records(value):
    with pytest.raises(BadRecord, match="field 'value': expected true or false"):
        normalise(K.BOOLEAN, value)


def test_text_is_kept_as_is_up_to_its_limit():
    assert normalise(K.STRING, "=SUM(A1)\n ÆØÅ ") == "=SUM(A1)\n ÆØÅ "
    assert normalise(K.STRING, "x" * 4096) == "x" * 4096


@pytest.mark.parametrize("value", ["x" * 4097, 5, 1.5, True, ["a"]])
def test_bad_text_is_a_bad_record(value):
    with pytest.raises(BadRecord, match="field 'value'"):
        normalise(K.STRING, value)


# --- rows -------------------------------------------------------------------------------------


def test_a_row_follows_the_column_order_and_ignores_extra_fields():
    report = definition(Column("count", K.INTEGER), Column("at", K.DATETIME))

    row = report.row({"at": "2025-01-01T10:00:00+01:00", "extra": "ignored", "count": 3, "id": "r1"})

    assert row == ("r1", 3, "2025-01-01T09:00:00.000Z")


def test_a_column_reads_its_upstream_field_and_errors_name_that_field():
    report = definition(Column("quantity_kg", K.DECIMAL, source="qtyKg"))

    assert report.row({"id": "r1", "qtyKg": 2.5, "quantity_kg": 9}) == ("r1", 2.5)
    with pytest.raises(BadRecord, match="field 'qtyKg'"):
        report.row({"id": "r1", "qtyKg": "2.5"})


@pytest.mark.parametrize("record", [{"id": "r1"}, {"id": "r1", "count": None}])
def test_a_missing_required_field_is_a_bad_record(record):
    report = definition(Column("count", K.INTEGER))

    with pytest.raises(BadRecord, match="field 'count' is missing"):
        report.row(record)


@pytest.mark.parametrize("record", [{"id": "r1"}, {"id": "r1", "notes": None}])
def test_a_missing_optional_field_is_an_empty_cell(record):
    report = definition(Column("notes", K.STRING, required=False))

    assert report.row(record) == ("r1", None)


def test_an_optional_field_that_is_present_is_still_checked():
    report = definition(Column("notes", K.STRING, required=False))

    with pytest.raises(BadRecord, match="field 'notes'"):
        report.row({"id": "r1", "notes": 12})


@pytest.mark.parametrize("record", [None, [], "r1", 5])
def test_a_record_that_is_not_an_object_is_a_bad_record(record):
    with pytest.raises(BadRecord, match="not a JSON object"):
        definition().row(record)


def test_a_real_definition_normalises_a_real_record():
    report = definition_for(JobType.FEED_INTAKE_EXPORT)
    record = {
        "id": "fi-1",
        "recorded_at": "2025-01-05T08:00:00+01:00",
        "farm_id": "farm-1",
        "barn_id": "barn-2",
        "feed_type": "starter",
        "quantity_kg": 12.5,
        "source": "MANUAL",
    }

    assert report.row(record) == (
        "fi-1",
        "2025-01-05T07:00:00.000Z",
        "farm-1",
        "barn-2",
        None,
        "starter",
        12.5,
        "MANUAL",
        None,
    )


# --- order ------------------------------------------------------------------------------------


def test_sort_value_orders_by_the_sort_key_with_none_first():
    report = definition(
        Column("day", K.DATE, required=False), Column("weight", K.DECIMAL), sort_key=("day", "weight", "id")
    )
    rows = [
        report.row({"id": "b", "day": "2025-01-02", "weight": 1}),
        report.row({"id": "a", "day": "2025-01-02", "weight": 1}),
        report.row({"id": "c", "weight": 5}),
        report.row({"id": "d", "day": "2025-01-01", "weight": 2.5}),
        report.row({"id": "e", "day": "2025-01-02", "weight": 0.5}),
        report.row({"id": "f", "weight": 1}),
    ]

    ordered = sorted(rows, key=report.sort_value)

    assert [row[0] for row in ordered] == ["f", "c", "d", "e", "a", "b"]


def test_sort_value_compares_canonical_values_so_offsets_do_not_reorder_rows():
    report = definition_for(JobType.TELEMETRY_EXPORT)
    base = {"device_id": "d", "barn_id": "b", "metric": "t", "value": 1, "unit": "C"}
    first = report.row({**base, "id": "r1", "recorded_at": "2025-01-01T00:00:00Z"})
    same_moment_other_offset = report.row({**base, "id": "r1", "recorded_at": "2025-01-01T01:00:00+01:00"})
    later = report.row({**base, "id": "r0", "recorded_at": "2025-01-01T00:00:00.001Z"})

    assert report.sort_value(first) == report.sort_value(same_moment_other_offset)
    assert report.sort_value(first) < report.sort_value(later)


# --- whole pages --------------------------------------------------------------------------------

PAGE_REPORT = definition(
    Column("at", K.DATETIME),
    Column("day", K.DATE, required=False),
    Column("count", K.INTEGER, required=False),
    Column("weight", K.DECIMAL),
    Column("ok", K.BOOLEAN, required=False),
    Column("note", K.STRING, required=False),
    sort_key=("at", "id"),
)
CANONICAL = {"at": "2025-01-01T10:00:00.000Z", "day": "2025-01-01", "count": 3, "weight": 1.5, "ok": True}


def page_of(*changes):
    records = [{**CANONICAL, "id": f"r{index}", **change} for index, change in enumerate(changes)]
    return [{name: value for name, value in record.items() if value != "<left out>"} for record in records]


@pytest.mark.parametrize(
    "change",
    [
        {},  # all canonical: the column-wise path
        {"day": None, "count": None, "ok": None, "note": None},
        {"at": "2025-01-01T11:00:00+01:00"},  # needs normalising: the row-by-row path
        {"at": "2025-01-01T10:00:00Z"},
        {"weight": 2},
        {"note": "=cmd"},
        {"extra": "ignored"},
        {"note": "<left out>"},  # an optional field absent, not null: the general path
        {"day": "<left out>", "count": "<left out>", "ok": "<left out>"},
    ],
)
def test_rows_of_a_page_equal_row_by_row(change):
    records = page_of({}, change, {"weight": 0.1})

    assert PAGE_REPORT.rows(records) == [PAGE_REPORT.row(record) for record in records]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"at": "2025-02-30T10:00:00.000Z"}, "'at'"),
        ({"day": "2025-02-30"}, "'day'"),
        ({"day": ""}, "'day'"),
        ({"weight": math.nan}, "'weight'"),
        ({"weight": math.inf}, "'weight'"),
        ({"weight": True}, "'weight'"),
        ({"count": 1.0}, "'count'"),
        ({"ok": 1}, "'ok'"),
        ({"note": "x" * 4097}, "'note'"),
        ({"weight": None}, "'weight' is missing"),
    ],
)
def test_a_bad_value_in_a_page_names_its_record_and_field(change, fragment):
    records = page_of({}, {}, change, {})

    with pytest.raises(BadRecord) as raised:
        PAGE_REPORT.rows(records)

    assert raised.value.position == 2
    assert fragment in str(raised.value)


def test_a_record_that_is_not_an_object_is_named_by_position():
    with pytest.raises(BadRecord) as raised:
        PAGE_REPORT.rows([*page_of({}), ["not", "an", "object"]])

    assert (raised.value.position, str(raised.value)) == (1, "a record is not a JSON object")


def test_first_out_of_order_finds_the_first_row_not_after_its_predecessor():
    rows = PAGE_REPORT.rows(page_of({"at": "2025-01-01T10:00:00.000Z"}, {"at": "2025-01-01T10:00:01.000Z"}))

    assert PAGE_REPORT.first_out_of_order(rows, None) is None
    assert PAGE_REPORT.first_out_of_order(rows, PAGE_REPORT.sort_value(rows[1])) == 0
    assert PAGE_REPORT.first_out_of_order([rows[0], rows[1], rows[1]], None) == 2
    assert PAGE_REPORT.first_out_of_order([rows[1], rows[0]], None) == 1
    assert PAGE_REPORT.first_out_of_order([], PAGE_REPORT.sort_value(rows[1])) is None


def test_first_out_of_order_with_an_optional_sort_column_puts_none_first():
    report = definition(Column("day", K.DATE, required=False), sort_key=("day", "id"))
    rows = report.rows([{"id": "b"}, {"id": "a", "day": "2025-01-01"}, {"id": "c", "day": None}])

    assert report.first_out_of_order(rows, None) == 2


# --- the upstream query -----------------------------------------------------------------------


def test_upstream_query_has_tenant_scope_period_sorted_filters_and_sort():
    report = definition_for(JobType.FEED_INTAKE_EXPORT)
    the_job = job(
        farm_id="farm-1",
        barn_id="barn-2",
        batch_id="batch-3",
        start_date=date(2025, 1, 1),
        end_date=date(2025, 1, 31),
        filters={"source": "MANUAL", "feed_type": ["starter", "grower"], "include_notes": True, "min_kg": 2.5},
    )

    query = report.upstream_query(the_job)

    assert query == {
        "tenant_id": "tenant-a",
        "sort": "recorded_at,id",
        "farm_id": "farm-1",
        "barn_id": "barn-2",
        "batch_id": "batch-3",
        "start_date": "2025-01-01",
        "end_date": "2025-01-31",
        "feed_type": "starter,grower",
        "include_notes": "true",
        "min_kg": "2.5",
        "source": "MANUAL",
    }
    filter_names = [name for name in query if name in the_job.filters]
    assert filter_names == sorted(the_job.filters)


def test_upstream_query_leaves_out_what_the_job_does_not_set():
    query = definition_for(JobType.KPI_FEEDING_EXPORT).upstream_query(job(job_type=JobType.KPI_FEEDING_EXPORT))

    assert query == {"tenant_id": "tenant-a", "sort": "date,id"}


def test_upstream_query_does_not_depend_on_filter_order():
    report = definition_for(JobType.FEED_INTAKE_EXPORT)

    one = report.upstream_query(job(filters={"b": 1, "a": False}))
    other = report.upstream_query(job(filters={"a": False, "b": 1}))

    assert list(one.items()) == list(other.items())
    assert (one["a"], one["b"]) == ("false", "1")


def test_upstream_query_adds_the_definitions_extra_parameters():
    report = definition(extra_query=lambda the_job: {"granularity": "day", "tenant_ref": the_job.tenant_id})

    query = report.upstream_query(job())

    assert (query["granularity"], query["tenant_ref"]) == ("day", "tenant-a")


@pytest.mark.parametrize("name", ["tenant_id", "farm_id", "start_date", "sort"])
def test_a_filter_cannot_replace_the_tenant_scope_period_or_sort(name):
    report = definition_for(JobType.FEED_INTAKE_EXPORT)
    the_job = job(farm_id="farm-1", start_date=date(2025, 1, 1), end_date=date(2025, 1, 31), filters={name: "x"})
    expected = {"tenant_id": "tenant-a", "farm_id": "farm-1", "start_date": "2025-01-01", "sort": "recorded_at,id"}

    assert report.upstream_query(the_job)[name] == expected[name]


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (["not", "an", "object"], "not a JSON object"),
        ("text", "not a JSON object"),
        ({k: v for k, v in CANONICAL.items() if k != "weight"} | {"id": "r9"}, "'weight' is missing"),
    ],
)
def test_a_page_with_a_record_that_is_no_object_or_lacks_a_required_field_is_refused_by_position(record, fragment):
    with pytest.raises(BadRecord, match=fragment) as refused:
        PAGE_REPORT.rows([*page_of({}), record])

    assert refused.value.position == 1
