import csv
import gzip
import io
import math
from datetime import date
from decimal import Decimal
from enum import IntEnum

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from report_export.core.models.common import ExportFormat
from report_export.generation.compression import GzipCompressor
from report_export.generation.writers import file_extension, format_float, make_encoder, mime_type

COLUMNS = ("farm_id", "day", "feed_kg", "ratio", "active", "note", "count")
ROWS = [
    ("farm-1", "2025-01-01", 12.5, 0.1, True, "plain", 3),
    ("farm-2", "2025-01-02", 3.0, 1e-05, False, 'says "hi", twice', -5),
    ("farm-3", "2025-01-03", None, -0.0, None, "two\nlines", None),
    ("farm-4", "2025-01-04", 1e16, 2.5, True, "ünïcødé ✓", 0),
]


def csv_bytes(rows, columns=COLUMNS, *, pages=1):
    encoder = make_encoder(ExportFormat.CSV, columns)
    size = max(1, math.ceil(len(rows) / pages))
    return encoder.header() + b"".join(encoder.encode(rows[i : i + size]) for i in range(0, len(rows), size))


def ndjson_bytes(rows, columns=COLUMNS, *, pages=1):
    encoder = make_encoder(ExportFormat.JSON, columns)
    size = max(1, math.ceil(len(rows) / pages))
    return encoder.header() + b"".join(encoder.encode(rows[i : i + size]) for i in range(0, len(rows), size))


def csv_cells(value):
    """The cells of the single data row written for one value in a one-column file."""
    data = csv_bytes([(value,)], ("v",)).split(b"\r\n", 1)[1]
    return next(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


# --- CSV format ---------------------------------------------------------------------------


def test_given_a_small_fixture_when_encoded_as_csv_then_the_bytes_are_exactly_rfc_4180():
    expected = (
        b"farm_id,day,feed_kg,ratio,active,note,count\r\n"
        b"farm-1,2025-01-01,12.5,0.1,true,plain,3\r\n"
        b'farm-2,2025-01-02,3,0.00001,false,"says ""hi"", twice",-5\r\n'
        b'farm-3,2025-01-03,,0,,"two\nlines",\r\n'
        b"farm-4,2025-01-04,10000000000000000,2.5,true,\xc3\xbcn\xc3\xafc\xc3\xb8d\xc3\xa9 \xe2\x9c\x93,0\r\n"
    )

    assert csv_bytes(ROWS) == expected


def test_given_csv_output_when_read_back_by_a_csv_reader_then_every_cell_is_recovered():
    parsed = list(csv.reader(io.StringIO(csv_bytes(ROWS).decode("utf-8"), newline="")))

    assert parsed[0] == list(COLUMNS)
    assert parsed[2][5] == 'says "hi", twice'
    assert parsed[3][5] == "two\nlines"
    assert len(parsed) == len(ROWS) + 1


def test_given_csv_output_then_it_is_utf8_without_a_byte_order_mark():
    output = csv_bytes(ROWS)

    assert not output.startswith(b"\xef\xbb\xbf")
    assert "ünïcødé ✓".encode() in output


@pytest.mark.parametrize(
    ("value", "cell"),
    [(None, ""), (True, "true"), (False, "false"), (0, "0"), (-5, "-5"), (10**30, "1" + "0" * 30), ("", "")],
)
def test_given_a_scalar_when_written_to_csv_then_its_text_is_stable(value, cell):
    assert csv_cells(value) == [cell]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-05, "0.00001"),
        (1e16, "10000000000000000"),
        (1.5e16, "15000000000000000"),
        (-1.25e-07, "-0.000000125"),
        (-0.0, "0"),
        (0.0, "0"),
        (3.0, "3"),
        (0.1, "0.1"),
        (1 / 3, "0.3333333333333333"),
        (123456789.125, "123456789.125"),
        (1e15, "1000000000000000"),
    ],
)
def test_given_a_float_when_formatted_then_it_is_shortest_round_trip_text_without_exponent(value, text):
    assert format_float(value) == text
    assert csv_cells(value) == [text]
    assert float(text) == value


@pytest.mark.parametrize("value", [5e-324, 1.7976931348623157e308, 2.2250738585072014e-308, 9007199254740993.0])
def test_given_an_extreme_float_when_formatted_then_it_reads_back_exactly_and_has_no_exponent(value):
    text = format_float(value)

    assert "e" not in text.lower()
    assert float(text) == value


def test_given_float_columns_when_batches_take_the_fast_or_the_general_path_then_cells_are_identical():
    values = [0.5, 2.0, -3.0, 12.75, 100.0, None, 7.125, 0.1]
    fast = csv_bytes([(value,) for value in values], ("v",))
    # One value in scientific notation sends the whole column down the per-cell path.
    general = csv_bytes([(value,) for value in [*values, 1e-05]], ("v",))

    assert general == fast + b"0.00001\r\n"
    # csv.writer quotes a lone empty cell so that the row is not read as a blank line.
    assert fast == b'v\r\n0.5\r\n2\r\n-3\r\n12.75\r\n100\r\n""\r\n7.125\r\n0.1\r\n'


def test_given_a_column_mixing_ints_and_floats_then_each_keeps_its_own_text():
    assert csv_bytes([(1,), (2.5,), (3.0,), (None,)], ("v",)) == b'v\r\n1\r\n2.5\r\n3\r\n""\r\n'


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("fmt", [ExportFormat.CSV, ExportFormat.JSON])
def test_given_a_non_finite_float_when_encoded_then_value_error_is_raised(fmt, value):
    encoder = make_encoder(fmt, ("a", "b"))

    for row in [(1.5, value), (None, value), (1, value)]:
        with pytest.raises(ValueError, match="(?i)finite"):
            encoder.encode([(0.5, 1.0), row])


def test_given_a_non_finite_float_in_a_mixed_type_column_when_encoded_then_value_error_is_raised():
    for fmt in ExportFormat:
        with pytest.raises(ValueError, match="(?i)finite"):
            make_encoder(fmt, ("a",)).encode([(1,), (math.nan,), (None,)])


# --- formula neutralisation ---------------------------------------------------------------


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_given_a_string_starting_with_a_formula_character_when_written_to_csv_then_a_quote_is_prefixed(first):
    value = f"{first}HYPERLINK(1)"

    assert csv_cells(value) == [f"'{value}"]


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_given_a_column_name_starting_with_a_formula_character_then_the_header_is_neutralised(first):
    header = make_encoder(ExportFormat.CSV, (f"{first}sum", "ok")).header()

    assert next(csv.reader(io.StringIO(header.decode(), newline=""))) == [f"'{first}sum", "ok"]


def test_given_negative_numbers_when_written_to_csv_then_they_are_not_neutralised():
    assert csv_bytes([(-5, -1.5, "-5")], ("int", "float", "text")) == b"int,float,text\r\n-5,-1.5,'-5\r\n"


def test_given_formula_characters_after_the_first_one_or_strings_after_none_then_only_the_formulas_change():
    rows = [("a=b",), (None,), ("",), ("=1+1",), ("x\x00=y",), ("ok",)]

    assert csv_bytes(rows, ("v",)) == b'v\r\na=b\r\n""\r\n""\r\n\'=1+1\r\nx\x00=y\r\nok\r\n'


def test_given_a_formula_string_when_written_to_ndjson_then_it_is_kept_as_is():
    assert ndjson_bytes([("=1+1", "-5")], ("a", "b")) == b'{"a":"=1+1","b":"-5"}\n'


# --- NDJSON format ------------------------------------------------------------------------


def test_given_a_small_fixture_when_encoded_as_ndjson_then_each_row_is_one_object_in_column_order():
    expected = (
        b'{"farm_id":"farm-1","day":"2025-01-01","feed_kg":12.5,"ratio":0.1,"active":true,"note":"plain","count":3}\n'
        b'{"farm_id":"farm-2","day":"2025-01-02","feed_kg":3.0,"ratio":0.00001,"active":false,'
        b'"note":"says \\"hi\\", twice","count":-5}\n'
        b'{"farm_id":"farm-3","day":"2025-01-03","feed_kg":null,"ratio":-0.0,"active":null,'
        b'"note":"two\\nlines","count":null}\n'
        b'{"farm_id":"farm-4","day":"2025-01-04","feed_kg":1e+16,"ratio":2.5,"active":true,'
        b'"note":"\xc3\xbcn\xc3\xafc\xc3\xb8d\xc3\xa9 \xe2\x9c\x93","count":0}\n'
    )

    output = ndjson_bytes(ROWS)

    assert make_encoder(ExportFormat.JSON, COLUMNS).header() == b""
    assert output == expected
    assert [list(orjson.loads(line)) for line in output.splitlines()] == [list(COLUMNS)] * len(ROWS)


def test_given_an_integer_beyond_64_bits_when_encoded_as_ndjson_then_value_error_is_raised():
    with pytest.raises(ValueError, match="JSON"):
        make_encoder(ExportFormat.JSON, ("a",)).encode([(2**64,)])


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_given_a_string_with_a_lone_surrogate_when_encoded_then_value_error_is_raised(fmt):
    with pytest.raises(ValueError):
        make_encoder(fmt, ("a",)).encode([("bad \ud800",)])


# --- both formats -------------------------------------------------------------------------


@pytest.mark.parametrize("encode", [csv_bytes, ndjson_bytes])
def test_given_the_same_rows_when_encoded_twice_or_in_other_batches_then_the_bytes_are_identical(encode):
    rows = [(f"id-{i}", i, i / 7, i % 3 == 0, None if i % 5 else "=x") for i in range(2_500)]
    columns = ("id", "n", "ratio", "flag", "note")

    once = encode(rows, columns, pages=3)

    assert encode(rows, columns, pages=3) == once
    assert encode(rows, columns, pages=1) == once
    assert encode(rows, columns, pages=len(rows)) == once


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_given_an_empty_batch_when_encoded_then_nothing_is_written(fmt):
    encoder = make_encoder(fmt, ("a",))

    assert encoder.encode([]) == b""
    assert encoder.encode(iter(())) == b""


@pytest.mark.parametrize("fmt", list(ExportFormat))
def test_given_a_generator_of_rows_when_encoded_then_it_is_consumed_like_a_list(fmt):
    rows = [("a", 1), ("b", 2)]

    assert make_encoder(fmt, ("x", "y")).encode(row for row in rows) == make_encoder(fmt, ("x", "y")).encode(rows)


@pytest.mark.parametrize("fmt", list(ExportFormat))
@pytest.mark.parametrize("row", [("only one",), ("a", "b", "c")])
def test_given_a_row_of_the_wrong_length_when_encoded_then_value_error_is_raised(fmt, row):
    with pytest.raises(ValueError, match="values for 2 columns"):
        make_encoder(fmt, ("a", "b")).encode([("x", "y"), row])


class Level(IntEnum):
    HIGH = 1


@pytest.mark.parametrize("fmt", list(ExportFormat))
@pytest.mark.parametrize("value", [Decimal("1.5"), date(2025, 1, 1), Level.HIGH, [1], {"a": 1}, b"bytes"])
def test_given_a_value_that_is_not_json_native_when_encoded_then_type_error_names_the_column(fmt, value):
    with pytest.raises(TypeError, match="'b'"):
        make_encoder(fmt, ("a", "b")).encode([(1, value)])


@pytest.mark.parametrize("columns", [(), ("a", "a"), ("a", 1)])
def test_given_invalid_columns_when_an_encoder_is_made_then_it_is_refused(columns):
    with pytest.raises((ValueError, TypeError)):
        make_encoder(ExportFormat.CSV, columns)


def test_given_each_format_then_mime_type_and_extension_are_fixed():
    assert make_encoder(ExportFormat.CSV, ("a",)).mime_type == "text/csv"
    assert make_encoder(ExportFormat.CSV, ("a",)).file_extension == ".csv"
    assert make_encoder(ExportFormat.JSON, ("a",)).mime_type == "application/x-ndjson"
    assert make_encoder(ExportFormat.JSON, ("a",)).file_extension == ".ndjson"
    assert mime_type(ExportFormat.CSV) == "text/csv"
    assert mime_type(ExportFormat.JSON, gzip=True) == "application/gzip"
    assert file_extension(ExportFormat.JSON, gzip=True) == ".ndjson.gz"
    assert file_extension("csv") == ".csv"


# --- gzip ---------------------------------------------------------------------------------


def gzip_of(chunks):
    compressor = GzipCompressor()
    return b"".join(compressor.compress(chunk) for chunk in chunks) + compressor.flush()


PAYLOAD = csv_bytes([(f"farm-{i % 40}", f"2025-01-{i % 28 + 1:02d}", i * 1.5, i) for i in range(20_000)], COLUMNS[:4])


def test_given_a_stream_when_gzipped_then_the_header_has_no_time_and_no_name_and_says_fastest_level():
    output = gzip_of([PAYLOAD])

    magic, method, flags, mtime, extra_flags = output[:2], output[2], output[3], output[4:8], output[8]
    assert magic == b"\x1f\x8b"
    assert method == 8  # deflate
    assert flags == 0  # no FNAME, FCOMMENT, FEXTRA, FHCRC
    assert mtime == b"\x00\x00\x00\x00"
    assert extra_flags == 4  # RFC 1952: "compressor used fastest algorithm", i.e. level 1


def test_given_the_same_stream_when_gzipped_twice_or_in_other_chunks_then_the_bytes_are_identical():
    once = gzip_of([PAYLOAD])
    chunks_of_1000 = [PAYLOAD[i : i + 1000] for i in range(0, len(PAYLOAD), 1000)]
    uneven = [PAYLOAD[:7], PAYLOAD[7:70_001], PAYLOAD[70_001:]]

    assert gzip_of([PAYLOAD]) == once
    assert gzip_of(chunks_of_1000) == once
    assert gzip_of(uneven) == once


def test_given_gzip_output_when_decompressed_by_the_gzip_module_then_the_input_comes_back():
    output = gzip_of([PAYLOAD[:100], PAYLOAD[100:]])

    assert gzip.decompress(output) == PAYLOAD
    assert len(output) < len(PAYLOAD) / 3
    with gzip.GzipFile(fileobj=io.BytesIO(output)) as file:
        file.read()
        assert file.mtime == 0
        assert file.name == ""


def test_given_an_empty_stream_when_gzipped_then_it_is_a_valid_empty_gzip_file():
    assert gzip.decompress(gzip_of([])) == b""


def test_given_a_finished_gzip_stream_when_more_is_written_then_it_is_refused():
    compressor = GzipCompressor()
    compressor.flush()

    with pytest.raises(RuntimeError):
        compressor.compress(b"late")
    with pytest.raises(RuntimeError):
        compressor.flush()


def test_given_one_formula_deep_in_a_large_batch_when_written_to_csv_then_only_that_cell_is_neutralised():
    rows = [(f"name {i}", i) for i in range(999)] + [("@SUM(A1)", 999)]

    lines = csv_bytes(rows, ("name", "n")).split(b"\r\n")

    assert lines[-2] == b"'@SUM(A1),999"
    assert lines[1:-2] == [f"name {i},{i}".encode() for i in range(999)]


# --- the column-wise text path against the cell-by-cell rule -----------------------------------

_TRICKY_CHARACTERS = "ab,\"\n\r\t\x00=+-@' ÆØ"


@given(
    st.lists(
        st.lists(st.one_of(st.none(), st.text(alphabet=_TRICKY_CHARACTERS, max_size=6)), min_size=2, max_size=2),
        min_size=1,
        max_size=30,
    )
)
def test_text_columns_are_written_as_the_cell_by_cell_rule_writes_them(rows):
    reference = io.StringIO()
    csv.writer(reference, lineterminator="\r\n").writerows(
        [["'" + cell if cell and cell[0] in "=+-@\t\r" else cell for cell in row] for row in rows]
    )

    encoded = make_encoder(ExportFormat.CSV, ["a", "b"]).encode([tuple(row) for row in rows])

    assert encoded == reference.getvalue().encode()


def test_a_nul_inside_a_value_does_not_shift_cells_when_others_are_neutralised():
    rows = [("x\x00=y", "=1"), (None, "plain"), ("", "@a")]

    body = make_encoder(ExportFormat.CSV, ["a", "b"]).encode(rows).decode()

    assert list(csv.reader(io.StringIO(body))) == [["x\x00=y", "'=1"], ["", "plain"], ["", "'@a"]]
