"""The file's body from pages: normalise, check the order, encode, compress, write; resumable after any page.

Kept apart from jobs and S3 so that bench/bench_generation.py times this very loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from report_export.generation.compression import GzipCompressor
from report_export.generation.sources import Page, UpstreamBadData
from report_export.generation.writers import RowEncoder
from report_export.reports import BadRecord, ReportDefinition


@dataclass(slots=True)
class Written:
    """How far the file is written: what another writer needs to go on where this one stopped."""

    rows: int = 0
    previous: tuple[Any, ...] | None = None  # the sort value of the last row written
    watermark: str | None = None
    finished: bool = False  # the trailer is out: nothing more may be written

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "previous": self.previous, "watermark": self.watermark}

    @classmethod
    def from_json(cls, saved: dict[str, Any]) -> Written:
        previous = saved["previous"]
        # JSON turns the sort value's pairs into lists; the order check compares tuples.
        return cls(
            rows=int(saved["rows"]),
            previous=None if previous is None else tuple(tuple(pair) for pair in previous),
            watermark=saved["watermark"],
        )


class StopWriting(Exception):
    """Raised by `on_page` to stop after the page just written, leaving the file unfinished."""


def encode_pages(
    definition: ReportDefinition,
    pages: Iterable[Page],
    encoder: RowEncoder,
    write: Callable[[bytes], None],
    on_page: Callable[[int, Page], None],
    *,
    compressor: GzipCompressor | None = None,
    resume: Written | None = None,
) -> Written:
    """Writes the file body (header, rows, gzip trailer) and says how far it got.

    `on_page(rows, page)` runs after each page is written: the caller's checkpoint for
    progress, the lease and cancels. When it raises StopWriting the body stops there,
    unfinished; a writer given the returned `Written` as `resume` (and the pages after that
    one, the compressor's and the sink's state) goes on as if nothing had stopped, so the bytes
    are those of one uninterrupted write, the order check included.
    """

    def emit(chunk: bytes) -> None:
        write(compressor.compress(chunk) if compressor else chunk)

    written = Written() if resume is None else replace(resume)
    if written.finished:
        raise RuntimeError("the file is already finished")
    if resume is None:
        emit(encoder.header())
    for page in pages:
        try:
            batch = definition.rows(page.records)
        except BadRecord as problem:
            raise UpstreamBadData(f"record {written.rows + (problem.position or 0) + 1}: {problem}") from None
        misplaced = definition.first_out_of_order(batch, written.previous)
        if misplaced is not None:
            raise UpstreamBadData(
                f"record {written.rows + misplaced + 1} is out of order or repeated "
                f"(the report is sorted by {', '.join(definition.sort_key)})"
            )
        if batch:
            written.previous = definition.sort_value(batch[-1])
        emit(encoder.encode(batch))
        written.rows += len(batch)
        written.watermark = page.watermark or written.watermark
        try:
            on_page(written.rows, page)
        except StopWriting:
            return written
    if compressor:
        write(compressor.flush())
    written.finished = True
    return written
