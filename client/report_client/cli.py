"""The `reports` command (being built)."""

from __future__ import annotations


def main() -> int:
    raise SystemExit("reports: not built yet")
