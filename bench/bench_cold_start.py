"""Cold-start benchmark: each handler's import as a whole new process, against boto3's own floor.

A Lambda cold start runs the handler module's imports before the first request. Measured here as
`python -S -c "import api.handler"` with what a function has in Lambda and nothing else: the
layer's pinned requirements installed for this machine into a directory of their own (the
development environment holds packages that botocore loads when present, such as awscrt, and the
layer does not), the service's code, bytecode present as the built artifact ships it, and the
environment the template gives each function (LAMBDA_TASK_ROOT set, so Powertools behaves as it
does there). The floor, `import boto3; boto3.client("s3")`, runs from the same directory in the
same run, interleaved run by run so that a busy moment weighs on both alike. Also prints the
size of the built layer and functions when `./dev build` has run.

    .venv/bin/python bench/bench_cold_start.py [--runs 9]
    .venv/bin/python bench/bench_cold_start.py --short     # 2 runs: proves it works (CI)
"""

from __future__ import annotations

import argparse
import compileall
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = "import boto3; boto3.client('s3')"
HANDLERS = ("api.handler", "generator.handler", "sweeper.handler", "scheduled_export.handler")
GOAL = 1.2


def _lambda_environments(packages: Path | None) -> dict[str, dict[str, str]]:
    """Each function's environment as the template resolves it, with what Lambda itself sets."""
    sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]
    from local.parameters import read_template
    from local.resources import assign_physical_ids
    from local.runtime import function_specs
    from local.template import TEMPLATE_PATH

    template = read_template(TEMPLATE_PATH)
    assign_physical_ids(template, aws_endpoint="http://unused.invalid", api_url="https://api.example.test")
    code = (
        ([str(packages)] if packages else [])
        + [str(ROOT / "layers" / "shared")]
        + [str(ROOT / "functions" / name) for name in os.listdir(ROOT / "functions")]
    )
    environments = {}
    for spec in function_specs(template).values():
        handler_module = spec.handler.rsplit(".", 1)[0]
        environments[handler_module] = {
            "PATH": os.environ.get("PATH", ""),
            "LAMBDA_TASK_ROOT": "/var/task",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "PYTHONPATH": os.pathsep.join(code),
            **spec.environment,
        }
    return environments


def _layer_copy(directory: Path) -> Path:
    """The layer's requirements for this machine's Python, compiled, in a directory of their own."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(directory),
            "-r",
            str(ROOT / "layers" / "shared" / "requirements.txt"),
        ],
        check=True,
    )
    compileall.compile_dir(directory, quiet=1)
    return directory


def _once(statement: str, environment: dict[str, str], *, isolated: bool) -> float:
    started = time.perf_counter()
    # -S: without site-packages, the layer's own directory is all the function sees.
    flags = ["-S"] if isolated else []
    subprocess.run([sys.executable, *flags, "-c", statement], env=environment, check=True)
    return time.perf_counter() - started


def _size(path: Path) -> tuple[int, int, int]:
    """Bytes on disk, bytes zipped (as uploaded), files."""
    files = [item for item in path.rglob("*") if item.is_file()]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for item in files:
            zipped.write(item, item.relative_to(path))
    return sum(item.stat().st_size for item in files), archive.tell(), len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--short", action="store_true")
    args = parser.parse_args()
    runs = 1 if args.short else args.runs

    # The short mode (CI) proves the measurement works with the development environment's packages;
    # its figures include what that environment loads and the layer does not.
    isolated = not args.short
    packages = _layer_copy(Path(tempfile.mkdtemp(prefix="layer-"))) if isolated else None
    environments = _lambda_environments(packages)
    environment_of = {FLOOR: environments["api.handler"]} | {
        f"import {handler}": environments[handler] for handler in HANDLERS
    }
    for directory in ("layers/shared", "functions"):  # bytecode present, as in the built artifact
        compileall.compile_dir(ROOT / directory, quiet=1)
    statements = [FLOOR, *(f"import {handler}" for handler in HANDLERS)]
    for statement in statements:  # a first run warms the file cache and writes any missing bytecode
        _once(statement, environment_of[statement], isolated=isolated)
    times: dict[str, list[float]] = {statement: [] for statement in statements}
    for _ in range(runs):
        for statement in statements:
            times[statement].append(_once(statement, environment_of[statement], isolated=isolated))

    floor = statistics.median(times[FLOOR])
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, median of {runs}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'cold start (whole process)':<40} {'median ms':>10} {'min ms':>8} {'vs floor':>9}  goal <= {GOAL}x")
    for statement in statements:
        median = statistics.median(times[statement])
        print(f"{statement:<40} {median * 1000:>10.0f} {min(times[statement]) * 1000:>8.0f} {median / floor:>8.2f}x")

    build = ROOT / ".aws-sam" / "build"
    if (build / "SharedLayer").is_dir():
        for artifact in (
            "SharedLayer",
            "ApiFunction",
            "GeneratorFunction",
            "SweeperFunction",
            "ScheduledExportFunction",
        ):
            on_disk, zipped, files = _size(build / artifact)
            compiled = sum(1 for _ in (build / artifact).rglob("*.cpython-312.pyc"))
            print(
                f"built {artifact:<26} {on_disk / 2**20:7.1f} MiB unzipped, {zipped / 2**20:6.1f} MiB zipped, "
                f"{files:5} files, {compiled:4} compiled modules"
            )
    else:
        print("no built artifact (./dev build) to size")


if __name__ == "__main__":
    main()
