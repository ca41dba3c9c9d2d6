"""A report file fetched and checked: streamed into a temporary file beside the target, its size and
sha256 compared with what the service recorded when it wrote the file, and only then renamed into place.
A file that does not check out is removed: nothing is ever left under the final name but the report."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report_client.errors import LocalFileError, UsageError, VerificationFailed


@dataclass(frozen=True)
class Expected:
    sha256: str
    size_bytes: int
    file_name: str

    @classmethod
    def of_job(cls, job: dict[str, Any]) -> Expected:
        sha256, size = job.get("sha256"), job.get("size_bytes")
        if not isinstance(sha256, str) or not isinstance(size, int):
            # Without the service's figures there is nothing to check the file against.
            raise VerificationFailed(f"job {job.get('id')} has no sha256 and size to verify its file against")
        name = job.get("file_name") or f"{job.get('id')}.{job.get('format') or 'out'}"
        return cls(sha256=sha256, size_bytes=size, file_name=Path(name).name)


@dataclass(frozen=True)
class Downloaded:
    path: Path
    sha256: str
    size_bytes: int

    def document(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "size_bytes": self.size_bytes, "verified": True}


def target_path(output: str | None, file_name: str) -> Path:
    """-o PATH as given; a directory (or nothing: the current one) gets the report's own file name."""
    if output is None:
        return Path.cwd() / file_name
    path = Path(output).expanduser()
    if path.is_dir() or output.endswith(os.sep):
        return path / file_name
    return path


def destination_directory(output: str | None) -> Path:
    """The directory -o PATH (or nothing: the current one) saves into, by target_path's own rule."""
    return target_path(output, "report").parent


def check_destination(output: str | None) -> None:
    """Before anything is sent: the file's directory exists and can be written (exit 2 otherwise)."""
    directory = destination_directory(output)
    if not directory.is_dir():
        reason = "it does not exist" if not directory.exists() else "it is not a directory"
        raise UsageError(
            f"cannot save the file in {directory}: {reason}; nothing was sent",
            hint="create the directory first, or give another -o PATH",
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(
            f"cannot save the file in {directory}: permission denied; nothing was sent",
            hint="give -o PATH in a directory you can write",
        )
    if output is not None and not output.endswith(os.sep):
        path = Path(output).expanduser()
        if path.exists() and not path.is_dir() and not path.is_file():
            raise UsageError(f"cannot save the file as {path}: it is not a regular file; nothing was sent")


def save_verified(chunks: Iterable[bytes], target: Path, expected: Expected) -> Downloaded:
    directory = target.parent
    if not directory.is_dir():
        raise LocalFileError(f"cannot write {target}: {directory} is not a directory")
    # Beside the target, so the final rename stays on one file system and is atomic.
    try:
        handle = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{target.name}.", suffix=".part", delete=False)
    except OSError as error:
        raise LocalFileError(f"cannot write in {directory}: {error.strerror or error}") from None
    temporary = Path(handle.name)
    try:
        digest, size = hashlib.sha256(), 0
        with handle:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                # Past the recorded size it is the wrong file already; no need to take it all.
                if size > expected.size_bytes:
                    raise _mismatch(target, f"it is larger than the {expected.size_bytes} bytes recorded")
                _local(target, handle.write, chunk)
            _local(target, handle.flush)
            _local(target, os.fsync, handle.fileno())
        if size != expected.size_bytes:
            raise _mismatch(target, f"{size} bytes received, {expected.size_bytes} recorded")
        actual = digest.hexdigest()
        if actual != expected.sha256:
            raise _mismatch(target, f"sha256 {actual} received, {expected.sha256} recorded")
        if target.is_dir():
            raise LocalFileError(f"cannot write {target}: a directory is in the way of the file name")
        _local(target, os.replace, temporary, target)
    except BaseException:
        # Also on Ctrl-C, a broken connection or a full disk: a partial file must not be mistaken for the report.
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    return Downloaded(path=target, sha256=actual, size_bytes=size)


def _local(target: Path, operation: Callable[..., Any], *arguments: Any) -> Any:
    """A write, flush or rename of the file: an OSError of the local file system is exit 6, naming the path."""
    try:
        return operation(*arguments)
    except OSError as error:
        raise LocalFileError(
            f"cannot write {target}: {error.strerror or error}", hint="nothing was saved under that name"
        ) from None


def _mismatch(target: Path, detail: str) -> VerificationFailed:
    return VerificationFailed(
        f"the downloaded file is not the report the service recorded: {detail}; nothing was saved as {target}",
        hint="download it again; if it still differs, the stored file was changed: re-export the report",
    )
