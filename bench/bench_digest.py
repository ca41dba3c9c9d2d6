"""The whole-file sha256 of a report written over several invocations: what carrying its state costs.

A report that outgrows one Lambda run is finished by later invocations, and its manifest needs one
sha256 of the whole file. Two ways were open: carry the hash's state from invocation to invocation
(`report_export.core.digest.ResumableSha256`, OpenSSL's SHA-256 with its context saved field by
field), or, once the upload is complete, stream the object back and hash it in a final pass. This
prints, at each size:

- `hashlib`: the floor, Python's own sha256 over the same bytes;
- `resumable`: the resumable hash, its state saved through JSON and restored after every 8 MiB
  (as if every part ended an invocation: far more often than a real export does);
- `final pass`: reading the file back from local disk and hashing it, the least a second pass
  costs: in Lambda it would also be a full download from S3, which is slower than a local disk.

    .venv/bin/python bench/bench_digest.py              # 1 GB and 10 GB
    .venv/bin/python bench/bench_digest.py --short      # 64 MB and 256 MB (CI)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "shared"))

from report_export.core.digest import ResumableSha256  # noqa: E402

MB = 1000 * 1000
CHUNK = 8 * 1024 * 1024
_READ = 8 * 1024 * 1024


def chunks(total: int, block: bytes):
    sent = 0
    while sent < total:
        piece = block[: min(len(block), total - sent)]
        sent += len(piece)
        yield piece


def hashlib_seconds(total: int, block: bytes) -> tuple[float, str]:
    started = time.perf_counter()
    digest = hashlib.sha256()
    for piece in chunks(total, block):
        digest.update(piece)
    return time.perf_counter() - started, digest.hexdigest()


def resumable_seconds(total: int, block: bytes) -> tuple[float, str, int]:
    started = time.perf_counter()
    digest = ResumableSha256()
    restores = 0
    for piece in chunks(total, block):
        digest.update(piece)
        digest = ResumableSha256(orjson.loads(orjson.dumps(digest.state())))
        restores += 1
    return time.perf_counter() - started, digest.hexdigest(), restores


def final_pass_seconds(total: int, block: bytes, directory: str) -> tuple[float, str]:
    with tempfile.NamedTemporaryFile(dir=directory, prefix="digest-bench-") as file:
        for piece in chunks(total, block):
            file.write(piece)
        file.flush()
        os.fsync(file.fileno())
        with open(file.name, "rb", buffering=0) as reading:
            started = time.perf_counter()
            digest = hashlib.sha256()
            while piece := reading.read(_READ):
                digest.update(piece)
            return time.perf_counter() - started, digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the final pass's file is written")
    args = parser.parse_args()
    sizes = [64 * MB, 256 * MB] if args.short else [1000 * MB, 10_000 * MB]
    block = os.urandom(CHUNK)
    print(f"{'size':>8} {'hashlib MB/s':>13} {'resumable MB/s':>15} {'ratio':>6} {'restores':>9} {'final pass s':>13}")
    for size in sizes:
        floor, expected = hashlib_seconds(size, block)
        carried, carried_digest, restores = resumable_seconds(size, block)
        second, second_digest = final_pass_seconds(size, block, args.dir)
        if not carried_digest == second_digest == expected:
            raise SystemExit(f"the digests differ at {size} bytes")
        print(
            f"{size / MB / 1000:>6.2f}GB {size / MB / floor:>13.0f} {size / MB / carried:>15.0f}"
            f" {floor / carried:>6.2f} {restores:>9} {second:>13.1f}"
        )
    print("ratio: hashlib's time over the resumable hash's (1.00 = as fast as the floor)")
    print("final pass: read back and hash after the upload, on top of the writing itself (local disk)")


if __name__ == "__main__":
    main()
