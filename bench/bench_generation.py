"""Generation benchmark: the generator's own page loop, fed upstream JSON pages, and its floor.

Prints figures, asserts nothing about time. Every case runs in a fresh subprocess so that
peak RSS (ru_maxrss, a high-water mark for the whole process) belongs to that case alone.

The pipeline cases run report_export.generation.encoding.encode_pages, the loop the generator runs,
with the FEED_INTAKE_EXPORT definition, make_encoder, GzipCompressor and MultipartUpload, on
pages decoded with orjson and parsed by report_export.generation.sources.parse_page as the upstream
client does. Only the HTTP fetch and the job store around it are left out.

Cases, each at every --rows size:
  floor            orjson decode -> csv.writer with tuples -> sha256, in memory (the compute floor)
  csv|ndjson|csv.gz -> s3   the pipeline into moto's S3, in process (throughput); at the first
                   size only unless --s3-every-size: its memory figure is moto's, not ours
  csv|ndjson|csv.gz -> discard   the pipeline into a client that drops each part on arrival:
                   moto keeps every uploaded byte in this process's memory, so only this sink
                   shows what the pipeline itself holds. The csv case then runs once more under
                   tracemalloc, for the peak of the pipeline's Python allocations.

    .venv/bin/python bench/bench_generation.py [--rows 200000 1000000]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "layers" / "shared"))

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_SERVICE_NAME": "report-export-bench",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
)

from report_export.aws.multipart import MultipartUpload  # noqa: E402
from report_export.core.models.common import ExportFormat, JobType  # noqa: E402
from report_export.generation.compression import GzipCompressor  # noqa: E402
from report_export.generation.encoding import encode_pages  # noqa: E402
from report_export.generation.sources import PAGE_SIZE, parse_page  # noqa: E402
from report_export.generation.writers import file_extension, make_encoder, mime_type  # noqa: E402
from report_export.reports import definition_for  # noqa: E402

DEFINITION = definition_for(JobType.FEED_INTAKE_EXPORT)
PAGE_ROWS = PAGE_SIZE
# Distinct pages generated once and served in turn: enough variety that gzip (32 KiB window) and
# the CPU caches see fresh data, small enough to be a constant, not a row-count-sized, cost.
POOL_PAGES = 40
# The pipeline refuses rows that are not strictly increasing in (recorded_at, id), so a pool
# page cannot be served twice as is. Its timestamps hold the page's minute and its ids the
# page's serial as placeholders, replaced per served page: two bytes.replace per 1,000 rows
# instead of re-serialising. The placeholders have the width of what replaces them.
MINUTE_MARK = b"@minute-of-page@"
SERIAL_MARK = b"@serial@"
FIRST_MINUTE = datetime(2025, 1, 1)
BUCKET = "report-export-bench"
CASES = (
    "floor",
    "csv->s3",
    "ndjson->s3",
    "csv.gz->s3",
    "csv->discard",
    "ndjson->discard",
    "csv.gz->discard",
)
TRACED_CASE = "csv->discard"
WARM_UP_ROWS = 20 * PAGE_ROWS


def _page_pool() -> list[bytes]:
    rng = random.Random(20250101)
    minute, serial = MINUTE_MARK.decode(), SERIAL_MARK.decode()
    farms = [f"018f1a84-bb0e-7d3f-b2e4-{rng.getrandbits(48):012x}" for _ in range(12)]
    feed_types = ("pre-starter", "starter", "grower", "finisher")
    sources = ("silo-sensor", "silo-sensor", "silo-sensor", "manual", "delivery-import")
    notes = (
        "silo 3 refilled after the morning check, level ok",
        "manual entry; scale recalibrated on site by the operator",
        "delivery note 4471 matched",
        None,
        None,
        None,
    )
    pool = []
    for _ in range(POOL_PAGES):
        items = []
        # Strictly increasing milliseconds within the page's minute.
        for index, millis in enumerate(sorted(rng.sample(range(60_000), PAGE_ROWS))):
            farm = rng.randrange(len(farms))
            items.append(
                {
                    "id": f"{serial}-{index:04x}-7b1a-9c3d-{rng.getrandbits(48):012x}",
                    "recorded_at": f"{minute}:{millis // 1000:02d}.{millis % 1000:03d}Z",
                    "farm_id": farms[farm],
                    "barn_id": f"barn-{farm:02d}-{rng.randrange(1, 9)}",
                    "batch_id": None if rng.random() < 0.1 else f"batch-2025-{rng.randrange(1, 400):04d}",
                    "feed_type": rng.choice(feed_types),
                    "quantity_kg": round(rng.uniform(5, 2500), 3),
                    "source": rng.choice(sources),
                    "notes": rng.choice(notes),
                }
            )
        pool.append(orjson.dumps({"items": items, "nextCursor": f"cursor-{serial}"}))
    return pool


def _write_pool(path: Path) -> None:
    # Generated once by the parent: every worker reads the same pages instead of rebuilding them.
    path.write_bytes(b"\n".join(_page_pool()))  # orjson output holds no raw newline


def _read_pool(path: Path) -> list[bytes]:
    # Line by line: reading the whole file and splitting it would hold the pool twice for a
    # moment, and that setup peak, not the pipeline's, would then be the process's ru_maxrss.
    with path.open("rb") as pool:
        return [page.rstrip(b"\n") for page in pool]


def _pages(pool: list[bytes], rows: int) -> Iterator[bytes]:
    """Upstream response bodies, as the HTTP client receives them, in increasing sort order."""
    for number in range(rows // PAGE_ROWS):
        minute = (FIRST_MINUTE + timedelta(minutes=number)).strftime("%Y-%m-%dT%H:%M").encode()
        yield pool[number % len(pool)].replace(MINUTE_MARK, minute).replace(SERIAL_MARK, b"%08x" % number)


class DiscardingS3:
    """Accepts a multipart upload and drops each part: S3 with infinite bandwidth and no memory."""

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {"UploadId": "discard"}

    def upload_part(self, **request: Any) -> dict[str, Any]:
        return {"ETag": f'"{request["PartNumber"]}"'}

    def complete_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}

    def put_object(self, **_: Any) -> dict[str, Any]:
        return {}

    def abort_multipart_upload(self, **_: Any) -> dict[str, Any]:
        return {}


class CountingGzip(GzipCompressor):
    """The real compressor, also counting what goes in, for the encoder's MB/s of a gzip case."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes_in = 0

    def compress(self, chunk: bytes) -> bytes:
        self.bytes_in += len(chunk)
        return super().compress(chunk)


@dataclass
class Result:
    case: str
    rows: int
    seconds: float
    output_bytes: int
    encoded_bytes: int  # before gzip
    parts: int
    rss_before_mib: float
    peak_rss_mib: float
    tracemalloc_peak_mib: float | None = None


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _floor(pages: Iterator[bytes]) -> tuple[int, int, int]:
    row_of = itemgetter(*(column.field for column in DEFINITION.columns))
    digest = hashlib.sha256()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    size = 0
    for page in pages:
        writer.writerows([row_of(item) for item in orjson.loads(page)["items"]])
        chunk = buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
        digest.update(chunk)
        size += len(chunk)
    return size, size, 0


def _pipeline(pages: Iterator[bytes], rows: int, fmt: ExportFormat, *, gzip: bool, s3: Any) -> tuple[int, int, int]:
    compressor = CountingGzip() if gzip else None
    upload = MultipartUpload(
        s3,
        bucket=BUCKET,
        key=_object_key(fmt, gzip),
        content_type=mime_type(fmt, gzip=gzip),
        content_disposition='attachment; filename="report"',
    )
    with upload:
        written = encode_pages(
            DEFINITION,
            (parse_page(orjson.loads(page)) for page in pages),
            make_encoder(fmt, DEFINITION.column_names),
            upload.write,
            lambda _rows, _total: None,
            compressor=compressor,
        ).rows
        stored = upload.complete()
    if written != rows:
        raise SystemExit(f"the pipeline wrote {written} rows of {rows}")
    return stored.size_bytes, compressor.bytes_in if compressor else stored.size_bytes, stored.parts


def _object_key(fmt: ExportFormat, gzip: bool) -> str:
    return f"bench/report{file_extension(fmt, gzip=gzip)}"


def run_case(case: str, rows: int, pool: list[bytes]) -> Result:
    sink = case.split("->", 1)[-1]
    fmt = ExportFormat.JSON if case.startswith("ndjson") else ExportFormat.CSV
    gzip = case.startswith("csv.gz")
    client: Any = DiscardingS3()
    if sink == "s3":
        import boto3
        from moto import mock_aws

        mock_aws().start()
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})

    def run(rows: int = rows) -> tuple[int, int, int]:
        if case == "floor":
            return _floor(_pages(pool, rows))
        return _pipeline(_pages(pool, rows), rows, fmt, gzip=gzip, s3=client)

    run(WARM_UP_ROWS)  # first-call costs (lazy imports, caches, thread start) stay out of the timing
    rss_before = _current_rss_mib()
    started = time.perf_counter()
    output, encoded, parts = run()
    seconds = time.perf_counter() - started
    peak_rss = _peak_rss_mib()  # read before tracemalloc, whose own bookkeeping takes memory
    if sink == "s3" and client.head_object(Bucket=BUCKET, Key=_object_key(fmt, gzip))["ContentLength"] != output:
        raise SystemExit(f"{case}: the object in S3 is not the size the sink counted")
    traced_peak = None
    if case == TRACED_CASE:
        tracemalloc.start()
        run()
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return Result(case, rows, seconds, output, encoded, parts, rss_before, peak_rss, traced_peak)


def _in_subprocess(case: str, rows: int, pool: Path) -> Result:
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", case, "--rows", str(rows), "--pool", str(pool)],
        check=True,
        capture_output=True,
        text=True,
    )
    return Result(**json.loads(completed.stdout.strip().splitlines()[-1]))


def _report(results: list[Result]) -> None:
    floors = {result.rows: result for result in results if result.case == "floor"}
    header = (
        f"{'case':<17}{'rows':>9}{'s':>7}{'rows/s':>10}{'MB/s out':>10}{'MB/s enc':>10}{'vs floor':>9}"
        f"{'B/row':>7}{'parts':>6}{'RSS pre':>9}{'RSS peak':>9}{'traced':>8}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        rate = result.rows / result.seconds
        floor = floors.get(result.rows)
        ratio = rate / (floor.rows / floor.seconds) if floor else float("nan")
        traced = f"{result.tracemalloc_peak_mib:.1f}" if result.tracemalloc_peak_mib is not None else "-"
        print(
            f"{result.case:<17}{result.rows:>9}{result.seconds:>7.2f}{rate:>10,.0f}"
            f"{result.output_bytes / result.seconds / 1e6:>10.1f}{result.encoded_bytes / result.seconds / 1e6:>10.1f}"
            f"{ratio:>9.2f}{result.encoded_bytes / result.rows:>7.0f}{result.parts:>6}"
            f"{result.rss_before_mib:>9.0f}{result.peak_rss_mib:>9.0f}{traced:>8}"
        )
    print(
        "\nMB/s out: bytes stored per second (gzip: compressed); MB/s enc: encoder output (CSV/NDJSON text)."
        "\nvs floor: rows/s over the floor's rows/s at the same size. RSS in MiB: 'pre' after imports, the"
        "\npage pool and a 20k-row warm-up; 'peak' = ru_maxrss. '->s3' peaks include moto's copies of the object;"
        "\n'->discard' peaks are the pipeline's own. traced: tracemalloc peak (MiB) of the pipeline alone."
    )


def _size_label(rows: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if rows % scale == 0:
            return f"{rows // scale}{unit}"
    return str(rows)


def _report_memory_growth(results: list[Result]) -> None:
    """Flat memory means the largest size peaks where the smallest does."""
    sizes = sorted({result.rows for result in results})
    if len(sizes) < 2:
        return
    small, large = _size_label(sizes[0]), _size_label(sizes[-1])
    by_case = {(result.case, result.rows): result for result in results}

    def compare(what: str, first: float, last: float) -> str:
        return f"{what} {small}: {first:.1f} MiB, {large}: {last:.1f} MiB (ratio {last / first:.2f})"

    print()
    for case in CASES:
        first, last = by_case.get((case, sizes[0])), by_case.get((case, sizes[-1]))
        if not case.endswith("->discard") or first is None or last is None:
            continue
        figures = [compare("peak RSS", first.peak_rss_mib, last.peak_rss_mib)]
        if first.tracemalloc_peak_mib and last.tracemalloc_peak_mib:
            figures.append(compare("traced peak", first.tracemalloc_peak_mib, last.tracemalloc_peak_mib))
        print(f"{case} " + "; ".join(figures))


def _row_count(text: str) -> int:
    rows = int(text)
    if rows <= 0 or rows % PAGE_ROWS:
        raise argparse.ArgumentTypeError(f"row counts are whole pages: a positive multiple of {PAGE_ROWS}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=_row_count, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument(
        "--s3-every-size",
        action="store_true",
        help="run the ->s3 cases at every --rows size, not only the first (moto then holds ~5x the object in RAM)",
    )
    parser.add_argument("--worker", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--pool", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(asdict(run_case(args.worker, args.rows[0], _read_pool(args.pool)))))
        return
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        pool = Path(scratch) / "pages.ndjson"
        _write_pool(pool)
        for rows in args.rows:
            for case in args.cases:
                if case.endswith("->s3") and rows != args.rows[0] and not args.s3_every_size:
                    continue
                results.append(_in_subprocess(case, rows, pool))
                print(f"  {case} at {rows} rows: {results[-1].seconds:.1f}s", file=sys.stderr, flush=True)
    _report(results)
    _report_memory_growth(results)
    print(f"\nTotal {time.perf_counter() - started:.0f}s; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
