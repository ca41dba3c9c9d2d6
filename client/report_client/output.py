"""Where things are written: the result on stdout (one JSON document, or tables for people), everything
else (notes, progress, errors) on stderr, so `--output json` can be piped into another program."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from report_client.errors import ApiError, CliError

Render = Callable[[Console], None]

# Not a terminal (a pipe, a file): rich would take 80 columns and fold ids and sha256s to a few characters.
PIPED_WIDTH = 200


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # `reports types | head -2`: rich would exit 1; the command line treats a reader gone as done (exit 0).
        self.quiet = True
        raise BrokenPipeError


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Output:
    def __init__(self, mode: str = "table", *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.mode = mode
        self._stdout = stdout or sys.stdout
        # highlight off: rich would colour numbers and ids by guessing, which reads as meaning;
        # markup off: paths, reasons and ids are printed as they are ("[y/N]" is not a style tag).
        width = None if _is_terminal(self._stdout) else PIPED_WIDTH
        self.console = _Console(file=self._stdout, highlight=False, markup=False, soft_wrap=False, width=width)
        self.err = _Console(file=stderr or sys.stderr, highlight=False, markup=False, soft_wrap=True)

    @property
    def json(self) -> bool:
        return self.mode == "json"

    def result(self, document: Any, render: Render) -> None:
        """The command's one result: the document itself as JSON, or its human rendering."""
        if self.json:
            self._stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
            self._stdout.flush()
        else:
            render(self.console)

    def note(self, message: str, *, style: str | None = None) -> None:
        """A remark for the person at the terminal (stderr, whatever the output mode)."""
        self.err.print(Text(message, style=style or ""))

    def error(self, error: CliError) -> None:
        lines = [_headline(error)]
        if isinstance(error, ApiError):
            lines.append(f"  traceId: {error.trace_id or '(none given)'}")
        if error.hint:
            lines.append(f"  hint: {error.hint}")
        self.err.print(Text("\n".join(lines), style="red"))
        if self.json:
            self._stdout.write(json.dumps(error.document(), indent=2, ensure_ascii=False) + "\n")
            self._stdout.flush()


def _headline(error: CliError) -> str:
    if isinstance(error, ApiError):
        return f"reports: error: {error.code} (HTTP {error.status}): {error.message}"
    return f"reports: error: {error.message}"


# Building blocks of the human renderings


def text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(text(item) for item in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return str(value)


def fields_table(rows: Iterable[tuple[str, Any]], *, title: str | None = None) -> RenderableType:
    """A two-column table of named values; absent (None) values are left out."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in rows:
        if value is not None:
            table.add_row(name, value if isinstance(value, Text) else Text(text(value)))
    # The title above the table, not in it: a narrow table would wrap it to its own width.
    return Group(Text(title, style="bold"), table) if title else table


def list_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> Table:
    """A table with a header; its first column (the id to copy into the next command) never wraps."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for index, column in enumerate(columns):
        table.add_column(column, overflow="fold", no_wrap=index == 0)
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(text(cell)) for cell in row))
    return table


STATUS_STYLES = {
    "queued": "cyan",
    "pending": "cyan",
    "running": "yellow",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}


def status_text(status: str | None) -> Text:
    return Text(status or "-", style=STATUS_STYLES.get(status or "", ""))


def moment(value: str | None) -> str | None:
    """An API timestamp (2026-12-02T17:10:42.905Z) as a table cell: to the second, UTC implied."""
    if not value or len(value) < 19:
        return value
    return value[:10] + " " + value[11:19]
