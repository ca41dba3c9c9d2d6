"""A downloaded report is kept only when its size and sha256 are the job's: anything else leaves no file
under the final name and no temporary file beside it, and the command exits 4."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from report_client import cli
from report_client.downloads import Expected, save_verified, target_path
from report_client.errors import VerificationFailed

REPORT = b"id,recorded_at,farm_id,kg\n" + b"".join(
    b"r%d,2025-01-01T00:00:00.000Z,farm-12,%d\n" % (i, i) for i in range(500)
)


def chunks_of(path: Path, size: int = 1000) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """The file as the store serves it (a local file standing in for the presigned URL's body)."""
    source = tmp_path / "store" / "object"
    source.parent.mkdir()
    source.write_bytes(REPORT)
    return source


def expected(**changes: Any) -> Expected:
    values = {"sha256": hashlib.sha256(REPORT).hexdigest(), "size_bytes": len(REPORT), "file_name": "report.csv"}
    return Expected(**{**values, **changes})


def test_a_file_that_checks_out_is_renamed_into_place(served, tmp_path):
    target = tmp_path / "out" / "report.csv"
    target.parent.mkdir()

    saved = save_verified(chunks_of(served), target, expected())

    assert target.read_bytes() == REPORT
    assert (saved.path, saved.size_bytes, saved.sha256) == (target, len(REPORT), hashlib.sha256(REPORT).hexdigest())
    assert list(target.parent.iterdir()) == [target]


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda data: data[:-1] + b"X", "sha256 .* received"),  # same size, other bytes
        (lambda data: data[:-10], r"\d+ bytes received, \d+ recorded"),  # shorter
        (lambda data: data + b"extra row\n", "larger than the .* bytes recorded"),  # longer
    ],
)
def test_a_file_that_differs_leaves_nothing_behind(served, tmp_path, tamper, message):
    served.write_bytes(tamper(REPORT))
    out = tmp_path / "out"
    out.mkdir()
    target = out / "report.csv"

    with pytest.raises(VerificationFailed, match=message):
        save_verified(chunks_of(served), target, expected())

    assert list(out.iterdir()) == []


def test_a_file_already_under_the_target_name_is_kept_when_the_new_one_is_bad(served, tmp_path):
    target = tmp_path / "report.csv"
    target.write_bytes(b"the earlier, verified download")
    served.write_bytes(b"tampered")

    with pytest.raises(VerificationFailed):
        save_verified(chunks_of(served), target, expected())

    assert target.read_bytes() == b"the earlier, verified download"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report.csv", "store"]


def test_a_broken_transfer_removes_the_partial_file(tmp_path):
    def broken() -> Iterator[bytes]:
        yield REPORT[:100]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_verified(broken(), tmp_path / "report.csv", expected())

    assert list(tmp_path.iterdir()) == []


def test_the_target_is_the_given_path_or_the_reports_name_in_a_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert target_path(None, "r.csv.gz") == tmp_path / "r.csv.gz"
    assert target_path(str(tmp_path), "r.csv.gz") == tmp_path / "r.csv.gz"
    assert target_path(str(tmp_path / "mine.csv"), "r.csv.gz") == tmp_path / "mine.csv"


class FakeApi:
    """The API as the download command sees it: the job's recorded figures and a link to the file."""

    def __init__(self, job: dict[str, Any], served: Path) -> None:
        self._job, self._served = job, served

    def job(self, job_id: str) -> dict[str, Any]:
        return self._job

    def download_link(self, job_id: str) -> dict[str, Any]:
        return {"download_url": f"file://{self._served}", "expires_at": "2030-01-01T00:00:00.000Z"}

    def stream_file(self, url: str) -> Iterator[bytes]:
        return chunks_of(Path(url.removeprefix("file://")))


def run_download(monkeypatch, served: Path, target: Path, capsys, **job_changes: Any) -> tuple[int, str, str]:
    job = {
        "id": "019a8f0e-3a51-7c2e-9d41-4a0b5c6d7e8f",
        "status": "succeeded",
        "format": "csv",
        "file_name": "report.csv",
        "size_bytes": len(REPORT),
        "sha256": hashlib.sha256(REPORT).hexdigest(),
        **job_changes,
    }
    monkeypatch.setattr(cli, "Api", lambda settings: FakeApi(job, served))
    argv = ["download", job["id"], "-o", str(target), "--output", "json", "--api-url", "http://x", "--token", "t"]
    code = cli.run(argv, {"REPORTS_CONFIG": str(target.parent / "none.toml")})
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_download_command_saves_a_verified_file(monkeypatch, served, tmp_path, capsys):
    target = tmp_path / "saved.csv"

    code, out, _ = run_download(monkeypatch, served, target, capsys)

    assert code == 0
    assert target.read_bytes() == REPORT
    assert json.loads(out)["verified"] is True


@pytest.mark.parametrize(
    "job_changes",
    [{"size_bytes": len(REPORT) + 1}, {"sha256": hashlib.sha256(b"another file").hexdigest()}],
    ids=["size", "sha256"],
)
def test_the_download_command_exits_4_on_a_mismatch_and_leaves_no_file(
    monkeypatch, served, tmp_path, capsys, job_changes
):
    target = tmp_path / "saved.csv"

    code, out, err = run_download(monkeypatch, served, target, capsys, **job_changes)

    assert code == 4
    assert not target.exists()
    assert not [path for path in tmp_path.iterdir() if path.name.endswith(".part")]
    assert "not the report the service recorded" in err and "Traceback" not in err
    assert json.loads(out)["error"]["code"] == "VERIFICATION_FAILED"


def test_downloading_a_failed_job_exits_3(monkeypatch, served, tmp_path, capsys):
    code, _, err = run_download(
        monkeypatch, served, tmp_path / "x.csv", capsys, status="failed", error_code="UPSTREAM_FAILED"
    )

    assert code == 3
    assert "failed" in err and "UPSTREAM_FAILED" in err
