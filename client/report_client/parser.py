"""The command line's grammar (argparse): global options, accepted before or after the command, and each
command's own arguments, which the command modules add."""

from __future__ import annotations

import argparse
from typing import NoReturn

from report_client import __version__
from report_client.commands import jobs, reexports, report_types, schedules
from report_client.errors import EXIT_CODES_HELP, UsageError

DESCRIPTION = """Operate the report export service from a terminal: create reports, follow them, download and
verify their files, re-export them for an audit, read their history, manage schedules.
Every call goes through the service's HTTP API."""

CONFIGURATION_HELP = """configuration (flags win over the environment, which wins over the profile):
  --api-url / REPORTS_API_URL / api_url      the API's base URL, e.g. http://127.0.0.1:3000
  --token / REPORTS_TOKEN / token            a bearer token (or token_command: a command printing one)
  --profile / REPORTS_PROFILE                the profile of the config file [default]
  config file: $REPORTS_CONFIG or ~/.config/reports/config.toml, with [profiles.NAME] tables"""


class ReportsParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One error path for everything: the usage error is rendered like any other (exit 2, no traceback).
        raise UsageError(message, hint=f"see: {self.prog} --help")


def _global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Below the top level the defaults are SUPPRESS, so an option given before the command is not reset
    # by the command's own parser.
    default = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("global options")
    group.add_argument("--api-url", default=default, metavar="URL", help="the API's base URL (REPORTS_API_URL)")
    group.add_argument("--token", default=default, metavar="TOKEN", help="bearer token (REPORTS_TOKEN)")
    group.add_argument("--profile", default=default, metavar="NAME", help="config file profile (REPORTS_PROFILE)")
    group.add_argument(
        "--output",
        "-O",
        choices=("table", "json"),
        default="table" if top else argparse.SUPPRESS,
        help="table for people, json for programs (one document on stdout) [table]",
    )


def build_parser() -> ReportsParser:
    parser = ReportsParser(
        prog="reports",
        description=DESCRIPTION,
        epilog=f"{CONFIGURATION_HELP}\n\n{EXIT_CODES_HELP}\n\nDocumentation: docs/cli.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"reports {__version__}")
    _global_options(parser, top=True)
    common = ReportsParser(add_help=False)
    _global_options(common, top=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=ReportsParser)
    report_types.register(commands, common)
    jobs.register(commands, common)
    reexports.register(commands, common)
    schedules.register(commands, common)
    return parser
