"""End-to-end generation benchmark: the path a real export takes, against its floors, in one run.

The sample upstream and moto's server run in processes of their own (bench/servers.py), as the
upstream services and S3 do in production; each measured case runs in a fresh process of its own,
so that its peak RSS (ru_maxrss) is that case's alone. The data is FEED_INTAKE_EXPORT over 32 days
(`rows_per_day` = rows / 32), pages of 1,000 records, so a sliced read has 32 slices.

Cases (each the median of --runs runs):
  floor-csv, floor-ndjson   the compute floor of the format, in memory: orjson decode of upstream pages
                            fetched beforehand -> csv.writer (tuples) or orjson encode -> sha256
  pipeline                  the generator's own path: UpstreamClient over HTTP, report_pages (slices when
                            SOURCE_CONCURRENCY > 1), CancelWatch, encode_pages (normalise, order check,
                            encode), MultipartUpload to moto server
  plain-loop                one cursor, and each stage waits for the one before: fetch a page, encode it,
                            upload a full part before reading on (the loop an export is usually written as)
  typical                   every record in a list, a pandas DataFrame, to_csv, one put_object

Benchmarks printed (see docs/performance.md for the figures on this machine):
  1. compute-bound: pipeline CSV and NDJSON, no upstream latency, against the floor of the format
  2. latency-bound: 50 ms per upstream page, pipeline with 8 slices against plain-loop, byte-identical
  3. memory: pipeline's peak RSS at the two --memory-rows sizes
  4. pipeline against typical on the same data: speed and memory ratios

    .venv/bin/python bench/bench_end_to_end.py              # the full run, ~15 min on 2 cores
    .venv/bin/python bench/bench_end_to_end.py --short      # proves it works (CI): small sizes, 1 run
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT), str(ROOT / "bench")]

from servers import BENCH_ENVIRONMENT, cpu_seconds, moto_server, set_knobs, upstream_server  # noqa: E402

DAYS = 32
START, END = date(2025, 1, 1), date(2025, 2, 1)
BUCKET = "bench-reports"
PART_SIZE = 8 * 1024 * 1024
POOL_PAGES = 40


@dataclass
class Result:
    case: str
    rows: int
    seconds: float
    sha256: str
    size_bytes: int
    peak_rss_mib: float
    cpu_seconds: float = 0.0  # the case's own CPU time (all its threads) while it was timed
    upstream_cpu_seconds: float = 0.0  # the sample upstream's CPU time over the run
    s3_cpu_seconds: float = 0.0  # moto server's CPU time over the run

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds


# ---------------------------------------------------------------- the cases, run in a worker process


def _job(fmt: str) -> Any:
    from report_export.core.models.common import ExportFormat, JobStatus, JobType
    from report_export.core.models.jobs import Job

    return Job(
        id="bench",
        tenant_id="tenant-bench",
        requested_by="bench",
        job_type=JobType.FEED_INTAKE_EXPORT,
        format=ExportFormat(fmt),
        farm_id="farm-1",
        start_date=START,
        end_date=END,
        status=JobStatus.RUNNING,
        created_at="2025-01-01T00:00:00.000Z",
        updated_at="2025-01-01T00:00:00.000Z",
    )


def _clients(upstream_url: str, s3_url: str) -> tuple[Any, Any]:
    import boto3
    from botocore.config import Config

    from report_export.generation.sources import UpstreamClient

    s3 = boto3.client("s3", endpoint_url=s3_url, config=Config(s3={"addressing_style": "path"}))
    upstream = UpstreamClient({"feed": upstream_url}, token=lambda: "bench", max_connections=16)
    return upstream, s3


class _Stopwatch:
    """Wall and CPU time (this process, all its threads) since the timed part began."""

    def __init__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def seconds(self) -> float:
        return time.perf_counter() - self._wall

    def cpu_seconds(self) -> float:
        return time.process_time() - self._cpu


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _floor(upstream_url: str, rows: int, fmt: str) -> Result:
    """Decode, encode and hash pages already in memory: what the CPU alone costs per row."""
    import orjson
    import urllib3

    from report_export.core.models.common import JobType
    from report_export.reports import definition_for

    definition = definition_for(JobType.FEED_INTAKE_EXPORT)
    pool = urllib3.PoolManager()
    per_day = rows // DAYS
    bodies = []
    for page in range(POOL_PAGES):
        query = f"start_date={START}&end_date={END}&limit=1000&cursor={page * (DAYS * per_day) // POOL_PAGES}"
        bodies.append(
            pool.request(
                "GET",
                f"{upstream_url}{definition.path}?{query}&tenant_id=t&farm_id=f",
                headers={"Authorization": "Bearer bench"},
            ).data
        )
    columns = itemgetter(*definition.column_names)
    digest = hashlib.sha256()
    size = 0
    watch = _Stopwatch()
    done = 0
    index = 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    while done < rows:
        records = orjson.loads(bodies[index % POOL_PAGES])["items"][: rows - done]
        index += 1
        if fmt == "csv":
            writer.writerows([columns(record) for record in records])
            chunk = buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        else:
            newline = orjson.OPT_APPEND_NEWLINE
            chunk = b"".join([orjson.dumps(record, option=newline) for record in records])
        digest.update(chunk)
        size += len(chunk)
        done += len(records)
    seconds, cpu = watch.seconds(), watch.cpu_seconds()
    return Result(f"floor-{fmt}", done, seconds, digest.hexdigest(), size, _peak_rss_mib(), cpu)


def _pipeline(upstream_url: str, s3_url: str, rows: int, fmt: str, concurrency: int) -> Result:
    from report_export.aws.multipart import MultipartUpload
    from report_export.generation.encoding import encode_pages
    from report_export.generation.slices import report_pages
    from report_export.generation.watch import CancelWatch
    from report_export.generation.writers import make_encoder, mime_type
    from report_export.reports import definition_for

    job = _job(fmt)
    definition = definition_for(job.job_type)
    upstream, s3 = _clients(upstream_url, s3_url)
    encoder = make_encoder(job.format, definition.column_names)
    key = f"pipeline-{fmt}-{concurrency}-{time.time_ns()}"
    watch = _Stopwatch()
    with MultipartUpload(
        s3, bucket=BUCKET, key=key, content_type=mime_type(job.format), content_disposition="attachment"
    ) as upload:
        pages = CancelWatch(lambda: False, step_seconds=1.0).items(
            report_pages(upstream, definition, job, concurrency=concurrency)
        )
        written = encode_pages(definition, pages, encoder, upload.write, lambda rows, total: None).rows
        stored = upload.complete()
    seconds = watch.seconds()
    cpu = watch.cpu_seconds()
    s3.delete_object(Bucket=BUCKET, Key=key)
    return Result(
        f"pipeline-{fmt}-x{concurrency}", written, seconds, stored.sha256, stored.size_bytes, _peak_rss_mib(), cpu
    )


class _PartsOneAtATime:
    """Parts uploaded in the writer's own thread, each before it reads on."""

    def __init__(self, s3: Any, key: str) -> None:
        self._s3, self._key = s3, key
        self._upload_id = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        self._buffer += data
        if len(self._buffer) >= PART_SIZE:
            self._send()

    def _send(self) -> None:
        number = len(self._parts) + 1
        answer = self._s3.upload_part(
            Bucket=BUCKET, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=bytes(self._buffer)
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self._buffer = bytearray()

    def complete(self) -> None:
        if self._buffer or not self._parts:
            self._send()
        self._s3.complete_multipart_upload(
            Bucket=BUCKET, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )


def _plain_loop(upstream_url: str, s3_url: str, rows: int, fmt: str) -> Result:
    from report_export.generation.encoding import encode_pages
    from report_export.generation.writers import make_encoder
    from report_export.reports import definition_for

    job = _job(fmt)
    definition = definition_for(job.job_type)
    upstream, s3 = _clients(upstream_url, s3_url)
    key = f"plain-{fmt}-{time.time_ns()}"
    watch = _Stopwatch()
    sink = _PartsOneAtATime(s3, key)
    written = encode_pages(
        definition,
        upstream.pages(definition, job),
        make_encoder(job.format, definition.column_names),
        sink.write,
        lambda rows, total: None,
    ).rows
    sink.complete()
    seconds = watch.seconds()
    cpu = watch.cpu_seconds()
    s3.delete_object(Bucket=BUCKET, Key=key)
    return Result(f"plain-loop-{fmt}", written, seconds, sink.digest.hexdigest(), sink.size, _peak_rss_mib(), cpu)


def _typical(upstream_url: str, s3_url: str, rows: int) -> Result:
    import pandas

    from report_export.reports import definition_for

    job = _job("csv")
    definition = definition_for(job.job_type)
    upstream, s3 = _clients(upstream_url, s3_url)
    key = f"typical-{time.time_ns()}"
    watch = _Stopwatch()
    records = [record for page in upstream.pages(definition, job) for record in page.records]
    frame = pandas.DataFrame.from_records(records, columns=list(definition.column_names))
    body = frame.to_csv(index=False).encode()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    seconds = watch.seconds()
    cpu = watch.cpu_seconds()
    s3.delete_object(Bucket=BUCKET, Key=key)
    return Result(
        "typical-pandas", len(records), seconds, hashlib.sha256(body).hexdigest(), len(body), _peak_rss_mib(), cpu
    )


def _worker(arguments: list[str]) -> None:
    case, upstream_url, s3_url, rows, fmt, concurrency = arguments
    if case == "floor":
        result = _floor(upstream_url, int(rows), fmt)
    elif case == "pipeline":
        result = _pipeline(upstream_url, s3_url, int(rows), fmt, int(concurrency))
    elif case == "plain-loop":
        result = _plain_loop(upstream_url, s3_url, int(rows), fmt)
    else:
        result = _typical(upstream_url, s3_url, int(rows))
    print(json.dumps(result.__dict__))


# ---------------------------------------------------------------- the orchestration


class Bench:
    def __init__(self, upstream_url: str, s3_url: str, runs: int) -> None:
        self.upstream_url, self.s3_url, self.runs = upstream_url, s3_url, runs

    def case(self, case: str, rows: int, *, fmt: str = "csv", concurrency: int = 1, delay: float = 0.0) -> Result:
        set_knobs(self.upstream_url, rows_per_day=rows // DAYS, delay_sec=delay, watermark=None)
        results = []
        for _ in range(self.runs):
            upstream_cpu, s3_cpu = cpu_seconds(self.upstream_url), cpu_seconds(self.s3_url)
            completed = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    case,
                    self.upstream_url,
                    self.s3_url,
                    str(rows),
                    fmt,
                    str(concurrency),
                ],
                env={**os.environ, **BENCH_ENVIRONMENT},
                capture_output=True,
                text=True,
                check=False,
            )
            if completed.returncode != 0:
                raise RuntimeError(f"{case} failed:\n{completed.stderr[-3000:]}")
            result = Result(**json.loads(completed.stdout.strip().splitlines()[-1]))
            result.upstream_cpu_seconds = cpu_seconds(self.upstream_url) - upstream_cpu
            result.s3_cpu_seconds = cpu_seconds(self.s3_url) - s3_cpu
            results.append(result)
        middle = sorted(results, key=lambda result: result.seconds)[len(results) // 2]
        print(
            f"  {middle.case:<22} {middle.rows:>10,} rows  {middle.seconds:8.2f} s  "
            f"{middle.rows_per_second:>10,.0f} rows/s  peak RSS {middle.peak_rss_mib:6.1f} MiB  "
            f"CPU {middle.cpu_seconds:6.2f} s (upstream {middle.upstream_cpu_seconds:5.2f} s, "
            f"S3 {middle.s3_cpu_seconds:5.2f} s)",
            file=sys.stderr,
        )
        if len({result.sha256 for result in results}) != 1 and not case.startswith("floor"):
            raise RuntimeError(f"{case}: runs over the same data gave different files")
        return middle


def _budget(result: Result, floor: Result) -> str:
    """The best ratio to the floor that this machine's cores allow the export, whatever runs where.

    The sample upstream and moto's server work on the same cores as the generator, so the export
    cannot end before every process's CPU time for it, spread over all cores, has passed. The note
    gives the same bound for a generator that would cost no more CPU than the floor itself.
    """
    cores = os.cpu_count() or 1
    per_page = 1000 / result.rows
    servers = result.upstream_cpu_seconds + result.s3_cpu_seconds
    best = (result.cpu_seconds + servers) / cores
    floor_only = (floor.cpu_seconds * result.rows / floor.rows + servers) / cores
    return _line(
        f"   CPU ms a page, {result.case}",
        f"{1000 * result.cpu_seconds * per_page:.1f}+{1000 * result.upstream_cpu_seconds * per_page:.1f}"
        f"+{1000 * result.s3_cpu_seconds * per_page:.1f}",
        f"{1000 * floor.cpu_seconds / floor.rows * 1000:.1f}",
        floor.seconds / best,
        f"ours+upstream+S3 against the floor's; over {cores} cores at best this ratio"
        f" ({floor.seconds / floor_only:.2f}x if ours cost only the floor's CPU)",
    )


def _line(label: str, figure: str, floor: str, ratio: float, goal: str) -> str:
    return f"{label:<44} {figure:>16} {floor:>16} {ratio:>7.2f}x  {goal}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="small sizes and one run: proves the benchmark works")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory-rows", type=int, nargs=2, default=[1_000_000, 5_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds added per upstream page (benchmark 2)")
    parser.add_argument("--worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker)
        return
    if args.short:
        # Light, because CI runs it beside the other tests: it proves the path, its figures mean little.
        args.rows, args.memory_rows, args.runs, args.delay = 8_000, [8_000, 16_000], 1, 0.005

    started = time.perf_counter()
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"{args.rows:,} rows, median of {args.runs}",
        file=sys.stderr,
    )
    lines = []
    with upstream_server() as upstream_url, moto_server() as s3_url:
        import boto3

        boto3.client(
            "s3", endpoint_url=s3_url, region_name="eu-west-1", aws_access_key_id="bench", aws_secret_access_key="bench"
        ).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        bench = Bench(upstream_url, s3_url, args.runs)
        rows = args.rows

        print("1. compute-bound, no upstream latency", file=sys.stderr)
        for fmt in ("csv", "ndjson"):
            floor = bench.case("floor", rows, fmt=fmt)
            sequential = bench.case("pipeline", rows, fmt="json" if fmt == "ndjson" else fmt, concurrency=1)
            sliced = bench.case("pipeline", rows, fmt="json" if fmt == "ndjson" else fmt, concurrency=args.slices)
            if sequential.sha256 != sliced.sha256:
                raise RuntimeError(f"{fmt}: sliced and sequential reads wrote different files")
            for result, how in ((sequential, "1 cursor"), (sliced, f"{args.slices} slices")):
                lines.append(
                    _line(
                        f"1. end to end {fmt}, {how}, rows/s",
                        f"{result.rows_per_second:,.0f}",
                        f"{floor.rows_per_second:,.0f}",
                        result.rows_per_second / floor.rows_per_second,
                        "goal >= 0.9x the floor",
                    )
                )
            lines.extend(_budget(result, floor) for result in (sequential, sliced))

        print(f"2. latency-bound, {args.delay * 1000:.0f} ms per page", file=sys.stderr)
        plain = bench.case("plain-loop", rows, delay=args.delay)
        sliced = bench.case("pipeline", rows, concurrency=args.slices, delay=args.delay)
        identical = plain.sha256 == sliced.sha256 and plain.size_bytes == sliced.size_bytes
        lines.append(
            _line(
                f"2. {args.slices} slices against the plain loop, seconds",
                f"{sliced.seconds:.2f}",
                f"{plain.seconds:.2f}",
                plain.seconds / sliced.seconds,
                f"goal >= 6x; byte-identical: {'yes' if identical else 'NO'}",
            )
        )
        cores = os.cpu_count() or 1
        everything = sliced.cpu_seconds + sliced.upstream_cpu_seconds + sliced.s3_cpu_seconds
        waiting = sliced.rows / 1000 * args.delay / args.slices
        best = max(everything / cores, waiting)
        lines.append(
            _line(
                "   at best on this machine, seconds",
                f"{best:.2f}",
                f"{plain.seconds:.2f}",
                plain.seconds / best,
                f"the longer of every process's CPU over {cores} cores ({everything / cores:.2f} s) and the"
                f" latency over {args.slices} slices ({waiting:.2f} s); our process alone used"
                f" {sliced.cpu_seconds:.2f} s of CPU (at best {plain.seconds / sliced.cpu_seconds:.2f}x on one core)",
            )
        )
        if not identical:
            raise RuntimeError("the sliced export and the plain loop wrote different files")

        print("3. memory", file=sys.stderr)
        small, large = (bench.case("pipeline", size, concurrency=args.slices) for size in args.memory_rows)
        lines.append(
            _line(
                f"3. peak RSS MiB, {large.rows:,} against {small.rows:,} rows",
                f"{large.peak_rss_mib:.1f}",
                f"{small.peak_rss_mib:.1f}",
                large.peak_rss_mib / small.peak_rss_mib,
                f"growth {large.peak_rss_mib - small.peak_rss_mib:+.1f} MiB; goal <= 16 MB, <= 150 MB",
            )
        )

        print("4. against the typical implementation", file=sys.stderr)
        typical = bench.case("typical", rows)
        ours = bench.case("pipeline", rows, concurrency=1)
        lines.append(
            _line(
                "4. typical (pandas) against ours, seconds",
                f"{typical.seconds:.2f}",
                f"{ours.seconds:.2f}",
                typical.seconds / ours.seconds,
                "ours is this many times faster",
            )
        )
        lines.append(
            _line(
                "4. typical (pandas) against ours, peak RSS MiB",
                f"{typical.peak_rss_mib:.1f}",
                f"{ours.peak_rss_mib:.1f}",
                typical.peak_rss_mib / ours.peak_rss_mib,
                "ours needs this many times less memory",
            )
        )

    print(f"{'benchmark':<44} {'figure':>16} {'against':>16} {'ratio':>8}  note")
    print("\n".join(lines))
    print(f"total {time.perf_counter() - started:.0f} s; load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
