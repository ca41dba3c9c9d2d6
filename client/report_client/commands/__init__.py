"""The commands, one module per resource of the API. Each adds its parsers with register() and sets a
handler: handler(context, args) returns the exit code or raises a CliError."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from report_client.api import Api
from report_client.output import Output


@dataclass(frozen=True)
class Context:
    api: Api
    out: Output


Handler = Callable[[Context, argparse.Namespace], int]
Subparsers = Any  # argparse's _SubParsersAction, which argparse does not export


def add_command(
    commands: Subparsers, common: argparse.ArgumentParser, name: str, handler: Handler, help_text: str, **kwargs: Any
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, parents=[common], help=help_text, description=help_text, **kwargs)
    parser.set_defaults(handler=handler)
    return parser
