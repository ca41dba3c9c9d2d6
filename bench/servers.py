"""The benchmarks' servers, each in a process of its own as in production: the sample upstream and moto.

    python bench/servers.py upstream     # serves the sample upstream on a free port, prints its URL

Its knobs are set over HTTP (PUT /_knobs), as on the local stack.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
BENCH_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "POWERTOOLS_SERVICE_NAME": "report-export-bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "PYTHONPATH": os.pathsep.join(str(ROOT / part) for part in ("layers/shared", ".")),
}


_SERVER_PIDS: dict[str, int] = {}


def cpu_seconds(url: str) -> float:
    """User + system CPU time the server behind `url` has used so far (Linux's /proc; 0.0 elsewhere)."""
    try:
        fields = Path(f"/proc/{_SERVER_PIDS[url]}/stat").read_text().rsplit(")", 1)[1].split()
    except (KeyError, OSError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within 30 s")


@contextmanager
def _serving(command: list[str], port: int, what: str) -> Iterator[str]:
    process = subprocess.Popen(
        command, env={**os.environ, **BENCH_ENVIRONMENT}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_until_listening(port, process, what)
        url = f"http://127.0.0.1:{port}"
        _SERVER_PIDS[url] = process.pid
        yield url
    finally:
        process.terminate()
        process.wait(10)


def moto_server() -> AbstractContextManager[str]:
    """moto's server in its own process; yields its endpoint URL."""
    port = free_port()
    return _serving([PYTHON, "-m", "moto.server", "-p", str(port)], port, "moto server")


def upstream_server() -> AbstractContextManager[str]:
    """The sample upstream in its own process; yields its base URL."""
    port = free_port()
    return _serving([PYTHON, str(Path(__file__)), "upstream", str(port)], port, "sample upstream")


def set_knobs(upstream_url: str, **knobs: object) -> None:
    """Back to the defaults, then the given knobs."""
    for method, body in (("DELETE", None), ("PUT", json.dumps(knobs).encode())):
        request = urllib.request.Request(f"{upstream_url}/_knobs", data=body, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def _serve_upstream(port: int) -> None:
    sys.path[:0] = [str(ROOT / "layers" / "shared"), str(ROOT)]
    from local.upstream import SampleUpstream

    upstream = SampleUpstream(port=port, record_requests=False).start()
    print(upstream.url, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    if sys.argv[1:2] == ["upstream"]:
        _serve_upstream(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    else:
        sys.exit(__doc__)
