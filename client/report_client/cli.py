"""The `reports` command: parse, run the command, and turn every failure into a message and an exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from report_client.api import Api
from report_client.commands import Context
from report_client.errors import ClientBug, CliError, ExitCode, Interrupted
from report_client.output import Output
from report_client.parser import build_parser
from report_client.settings import resolve


def _requested_output(argv: Sequence[str]) -> str:
    # Before parsing (a usage error is also reported in the mode asked for): the last --output given.
    mode = "table"
    for index, item in enumerate(argv):
        if item in ("--output", "-O") and index + 1 < len(argv):
            mode = argv[index + 1]
        elif item.startswith("--output="):
            mode = item.split("=", 1)[1]
    return "json" if mode == "json" else "table"


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    try:
        return _run(argv, environ)
    except BrokenPipeError:
        # The reader went away while an error was being reported: nothing more can be said on stdout.
        _quiet_stdout()
        return int(ExitCode.OK)


def _quiet_stdout() -> None:
    # Point stdout at /dev/null so the exit's flush is quiet.
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a file descriptor (a test's capture): nothing will flush to it


def _run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    out = Output(_requested_output(argv))
    try:
        args = build_parser().parse_args(list(argv))
        out.mode = args.output
        settings = resolve(api_url=args.api_url, token=args.token, profile=args.profile, environ=environ)
        return int(args.handler(Context(api=Api(settings), out=out), args))
    except CliError as error:
        out.error(error)
        return int(error.exit_code)
    except KeyboardInterrupt:
        error = Interrupted("interrupted")
        out.error(error)
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # `reports list | head`: the reader has gone; that is not a failure.
        _quiet_stdout()
        return int(ExitCode.OK)
    except Exception as error:  # noqa: BLE001 - a script still gets one message and a documented exit code
        if environ.get("REPORTS_DEBUG"):
            raise
        bug = ClientBug(
            f"unexpected {type(error).__name__}: {error}",
            hint="this is a bug in the client; REPORTS_DEBUG=1 shows the traceback",
        )
        out.error(bug)
        return int(bug.exit_code)


def main(argv: Sequence[str] | None = None) -> int:
    return run(sys.argv[1:] if argv is None else argv, os.environ)


if __name__ == "__main__":
    sys.exit(main())
