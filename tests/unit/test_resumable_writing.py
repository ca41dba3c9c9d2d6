"""A file written in pieces, each piece by a fresh writer resumed from the state the last one saved, is
byte for byte the file one writer makes: the sha256, the gzip stage and the encoding loop, order check
included. These are what lets a report outgrow one invocation and still end as one file."""

import gzip
import hashlib
import random
import zlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from report_export.core.digest import ResumableSha256
from report_export.core.models.common import ExportFormat, JobType
from report_export.generation.compression import BLOCK_SIZE, GzipCompressor, GzipState
from report_export.generation.encoding import StopWriting, Written, encode_pages
from report_export.generation.sources import Page, UpstreamBadData
from report_export.generation.writers import make_encoder
from report_export.reports import definition_for

DATA = random.Random(3).randbytes(3 * BLOCK_SIZE + 12_345)


def cuts_of(data, count, seed):
    rng = random.Random(seed)
    points = sorted(rng.sample(range(1, len(data)), count)) if count else []
    bounds = [0, *points, len(data)]
    return [data[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]


# --- sha256 ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=700), st.lists(st.integers(min_value=0, max_value=700), max_size=6))
def test_a_sha256_saved_and_restored_anywhere_is_hashlibs_digest(data, points):
    pieces, last = [], 0
    for point in sorted(min(point, len(data)) for point in points):
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    digest = ResumableSha256()
    for piece in pieces:
        digest.update(piece)
        digest = ResumableSha256(orjson.loads(orjson.dumps(digest.state())))  # through JSON, as a checkpoint is

    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_sha256_takes_bytearrays_and_memoryviews_and_goes_on_after_a_digest():
    digest = ResumableSha256()
    digest.update(bytearray(b"abc"))
    assert digest.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    digest.update(memoryview(b"def"))
    digest.update(b"")
    assert digest.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


@pytest.mark.parametrize(
    "broken",
    [
        {"h": [0] * 7, "bits": 0, "pending": ""},
        {"h": [2**32] + [0] * 7, "bits": 0, "pending": ""},
        {"h": [0] * 8, "bits": 8, "pending": ""},  # one byte counted, none pending
        {"h": [0] * 8, "bits": 4, "pending": ""},  # not whole bytes
    ],
)
def test_a_sha256_state_that_does_not_add_up_is_refused(broken):
    with pytest.raises(ValueError):
        ResumableSha256(broken)


# --- gzip --------------------------------------------------------------------------------------


def gzip_in_pieces(pieces):
    state = None
    out = []
    for piece in pieces:
        compressor = GzipCompressor(state=state)
        out.append(compressor.compress(piece))
        saved = compressor.state()
        state = GzipState.from_json(orjson.loads(orjson.dumps(saved.as_json())), saved.pending)
    out.append(GzipCompressor(state=state).flush())
    return b"".join(out)


def gzip_at_once(data):
    compressor = GzipCompressor()
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(("count", "seed"), [(0, 1), (1, 2), (7, 3), (40, 4)])
def test_gzip_resumed_from_its_state_anywhere_is_the_same_member(count, seed):
    once = gzip_at_once(DATA)

    assert gzip_in_pieces(cuts_of(DATA, count, seed)) == once
    assert gzip.decompress(once) == DATA
    assert zlib.decompressobj(31).decompress(once) == DATA


@pytest.mark.parametrize("size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 2 * BLOCK_SIZE])
def test_gzip_at_block_edges_is_valid_and_the_same_however_it_is_fed(size):
    data = DATA[:size]
    once = gzip_at_once(data)

    assert gzip.decompress(once) == data
    assert gzip_in_pieces([data[:1], data[1:]] if size else [data]) == once
    assert gzip_in_pieces([data[i : i + 4096] for i in range(0, size, 4096)] or [b""]) == once


def test_gzip_blocks_cost_little_against_one_stream():
    text = b"".join(b"farm-%d,2025-01-%02d,%d.5\r\n" % (i % 40, i % 28 + 1, i) for i in range(300_000))
    one_stream = zlib.compressobj(1, zlib.DEFLATED, 31)
    stream_size = len(one_stream.compress(text) + one_stream.flush())

    assert len(gzip_at_once(text)) < stream_size * 1.01


def test_a_gzip_state_with_a_whole_block_pending_is_refused():
    with pytest.raises(ValueError):
        GzipCompressor(state=GzipState(True, 0, BLOCK_SIZE, bytes(BLOCK_SIZE)))


# --- the encoding loop ----------------------------------------------------------------------------

DEFINITION = definition_for(JobType.FEED_INTAKE_EXPORT)


def stored_feed_pages(count, per_page=250):
    """Pages in the report's sort order: every page later than the one before it."""
    pages = []
    for number in range(count):
        day = f"2025-{number // 28 + 1:02d}-{number % 28 + 1:02d}"
        records = [
            {
                "id": f"rec-{number * per_page + i:06d}",
                "recorded_at": f"{day}T{i // 60:02d}:{i % 60:02d}:00Z",
                "farm_id": "farm-1",
                "barn_id": f"barn-{i % 3}",
                "batch_id": None if i % 5 else f"batch-{i}",
                "feed_type": "=starter" if i == 7 else "grower",  # a formula to neutralise
                "quantity_kg": i * 1.25,
                "source": "MANUAL",
                "notes": None,
            }
            for i in range(per_page)
        ]
        pages.append(Page(records=records, next_cursor=None, total=None, watermark=f"w{number}"))
    return pages


def write_at_once(pages, fmt, gzipped):
    out = bytearray()
    compressor = GzipCompressor() if gzipped else None
    written = encode_pages(
        DEFINITION,
        pages,
        make_encoder(fmt, DEFINITION.column_names),
        out.extend,
        lambda *_: None,
        compressor=compressor,
    )
    assert written.finished
    return bytes(out), written


def write_in_pieces(pages, fmt, gzipped, stop_every):
    """Each piece by a fresh encoder and compressor, resumed from the JSON of the last piece's state."""
    out = bytearray()
    written, gzip_state, offset, pieces = None, None, 0, 0
    while written is None or not written.finished:
        compressor = GzipCompressor(state=gzip_state) if gzipped else None
        counted = [0]

        def stop_after_some(rows, total, counted=counted):
            counted[0] += 1
            if counted[0] == stop_every:
                raise StopWriting()

        written = encode_pages(
            DEFINITION,
            pages[offset:],
            make_encoder(fmt, DEFINITION.column_names),
            out.extend,
            stop_after_some,
            compressor=compressor,
            resume=None if written is None else Written.from_json(orjson.loads(orjson.dumps(written.as_json()))),
        )
        offset += counted[0]
        pieces += 1
        if gzipped and not written.finished:
            saved = compressor.state()
            gzip_state = GzipState.from_json(saved.as_json(), saved.pending)
    return bytes(out), written, pieces


@pytest.mark.parametrize(
    ("fmt", "gzipped"),
    [(ExportFormat.CSV, False), (ExportFormat.JSON, False), (ExportFormat.CSV, True), (ExportFormat.JSON, True)],
)
@pytest.mark.parametrize("stop_every", [1, 3])
def test_a_body_written_in_pieces_is_the_body_written_at_once(fmt, gzipped, stop_every):
    pages = stored_feed_pages(40)
    once, whole = write_at_once(pages, fmt, gzipped)

    pieced, written, pieces = write_in_pieces(pages, fmt, gzipped, stop_every)

    assert pieces >= 40 // stop_every
    assert pieced == once
    assert (written.rows, written.watermark) == (whole.rows, whole.watermark) == (10_000, "w39")
    if gzipped:
        assert gzip.decompress(pieced).count(b"\n") == 10_000 + (fmt is ExportFormat.CSV)  # the header


def test_the_order_check_holds_across_a_stop():
    pages = stored_feed_pages(2)
    repeated = Page(records=pages[1].records[-1:], next_cursor=None, total=None, watermark=None)
    first = encode_pages(
        DEFINITION, pages, make_encoder(ExportFormat.CSV, DEFINITION.column_names), lambda _: None, lambda *_: None
    )
    resumed = Written.from_json(orjson.loads(orjson.dumps({**first.as_json()})))

    with pytest.raises(UpstreamBadData, match="record 501 is out of order or repeated"):
        encode_pages(
            DEFINITION,
            [repeated],
            make_encoder(ExportFormat.CSV, DEFINITION.column_names),
            lambda _: None,
            lambda *_: None,
            resume=resumed,
        )


def test_a_finished_body_cannot_be_resumed():
    with pytest.raises(RuntimeError, match="finished"):
        encode_pages(
            DEFINITION,
            [],
            make_encoder(ExportFormat.CSV, DEFINITION.column_names),
            lambda _: None,
            lambda *_: None,
            resume=Written(finished=True),
        )
