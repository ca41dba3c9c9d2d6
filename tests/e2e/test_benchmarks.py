"""The benchmarks in their short mode (`./dev bench --short`): they run, print every figure, and what they
check of the service holds. Their timings are for people (`./dev bench`), not for this test."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_bench(script: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / script), "--short"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed.stdout


def figures(line: str) -> list[float]:
    return [float(number.replace(",", "")) for number in re.findall(r"\d[\d,]*\.?\d*", line)]


def test_the_end_to_end_benchmark_prints_every_figure_and_slices_write_the_same_bytes():
    output = run_bench("bench_end_to_end.py")

    for heading in (
        "1. end to end csv, 1 cursor",
        "1. end to end ndjson, 8 slices",
        "   CPU ms a page, pipeline-csv-x1",
        "   CPU ms a page, pipeline-json-x8",
        "2. 8 slices against",
        "   at best on this machine, seconds",
        "3. peak RSS",
        "4. typical (pandas) against ours, seconds",
        "4. typical (pandas) against ours, peak RSS",
    ):
        line = next((line for line in output.splitlines() if line.startswith(heading)), None)
        assert line is not None, f"no {heading!r} in:\n{output}"
        values = figures(line.split(heading, 1)[1])[:3]
        if "CPU ms a page" in heading:
            # ours+upstream+S3: the emulators' CPU is read from /proc in 10 ms clock ticks, and over the short
            # run moto server's share of a page can round to 0.0.
            assert values[0] > 0 and min(values) >= 0, line
        else:
            assert all(value > 0 for value in values), line
    assert "byte-identical: yes" in output


def test_the_cold_start_benchmark_measures_every_handler_against_the_floor():
    output = run_bench("bench_cold_start.py")

    for statement in (
        "import boto3; boto3.client('s3')",
        "import api.handler",
        "import generator.handler",
        "import sweeper.handler",
        "import scheduled_export.handler",
    ):
        line = next(line for line in output.splitlines() if line.startswith(statement))
        median, minimum, ratio = figures(line.removeprefix(statement))[-3:]
        assert 0 < minimum <= median and ratio > 0, line


def test_the_api_benchmark_shows_a_page_of_jobs_is_one_query_reading_one_page_whatever_the_tenant_size():
    output = run_bench("bench_api.py")

    reads = [line for line in output.splitlines() if line.startswith("DynamoDB per list page")]
    assert len(reads) == 2
    assert all(line.endswith("1.0 calls (Query), 21.0 items read") for line in reads), reads
    for label in ("create", "get", "list, 20 a page"):
        assert any(line.startswith(label) for line in output.splitlines()), output


def test_the_digest_benchmark_hashes_each_size_three_ways_to_the_same_digest():
    output = run_bench("bench_digest.py")

    rows = [line for line in output.splitlines() if re.match(r"\s*\d+\.\d+GB ", line)]
    assert len(rows) == 2, output  # the bench exits non-zero when the three digests differ
    for row in rows:
        size, floor_rate, carried_rate, ratio, restores, final_pass = figures(row)
        assert floor_rate > 0 and carried_rate > 0 and ratio > 0 and restores >= 8 and final_pass >= 0, row


def test_the_size_check_benchmark_compares_every_estimate_with_its_file_and_times_the_check():
    output = run_bench("bench_size_check.py")  # exits non-zero when an estimate is far from its file

    cases = [line for line in output.splitlines() if re.match(r"[A-Z_]+ +(csv|json)(\.gz)? ", line)]
    assert len(cases) == 5 * 4, output
    for case in cases:
        actual_mb, estimate_mb, ratio = figures(case.split(maxsplit=2)[2])
        assert actual_mb > 0 and estimate_mb > 0 and ratio > 0, case
    (timing,) = [line for line in output.splitlines() if line.startswith("size check per create")]
    p50, p99 = map(float, re.search(r"p50 ([\d.]+) ms, p99 ([\d.]+) ms", timing).groups())
    assert 0 < p50 <= p99, timing
