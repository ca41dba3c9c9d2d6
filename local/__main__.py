"""Command line of the local stack: run it, print a development token, list or fire schedules.

    python -m local run [--port 3000] [--param Name=Value] …   (./dev run)
    python -m local token --tenant tenant-a --role viewer      (./dev token)
    python -m local schedule [NAME]                            (./dev schedule)

Heavy imports wait inside the commands: function processes start by importing this module.
"""

from __future__ import annotations

import argparse
import errno
import json
import signal
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in values:
        name, separator, value = item.partition("=")
        if not separator or not name:
            raise SystemExit(f"{what} takes NAME=VALUE, not {item!r}")
        pairs[name] = value
    return pairs


def _template_options(parser: argparse.ArgumentParser) -> None:
    from local.template import TEMPLATE_PATH
    from local.tokens import DEFAULT_KEY_FILE

    parser.add_argument("--template", type=Path, default=TEMPLATE_PATH, help="SAM template (default: template.yaml)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="template parameter value (repeatable)"
    )
    parser.add_argument("--key-file", type=Path, default=DEFAULT_KEY_FILE, help="development JWT signing key (PEM)")


def _run(args: argparse.Namespace) -> int:
    from local.stack import LocalStack, StackOptions

    options = StackOptions(
        template=args.template,
        host=args.host,
        port=args.port,
        aws_port=args.aws_port,
        upstream_port=args.upstream_port,
        region=args.region,
        parameters=_pairs(args.param, "--param"),
        environment=_pairs(args.env, "--env"),
        key_file=args.key_file,
        visibility_timeout=args.visibility_timeout,
        ready_file=args.ready_file,
    )
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stack = LocalStack(options)
    try:
        stack.start()
    except Exception as error:
        print(f"The local stack could not start: {type(error).__name__}: {error}", file=sys.stderr)
        if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
            print(
                "A port is taken: choose others with --port, --aws-port, --upstream-port (0: any free port)",
                file=sys.stderr,
            )
        return 1
    print(stack.banner(), flush=True)
    while not stopping.wait(0.5):
        pass
    print("\nStopping the local stack…", flush=True)
    stack.stop()
    print("Stopped.", flush=True)
    return 0


def _token(args: argparse.Namespace) -> int:
    from local.parameters import read_template, token_settings
    from local.tokens import load_or_create_key, mint

    settings = token_settings(read_template(args.template, _pairs(args.param, "--param")))
    roles = [role for item in args.role for role in item.split(",") if role]
    token = mint(
        load_or_create_key(args.key_file), settings, tenant=args.tenant, roles=roles, subject=args.sub, ttl_sec=args.ttl
    )
    print(token)
    return 0


def _running_schedules(api: str) -> dict | None:
    """What a running local stack lists (template and tenants' schedules, and its firings), or None."""
    try:
        with urllib.request.urlopen(f"{api.rstrip('/')}/_local/schedules", timeout=2) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _schedule(args: argparse.Namespace) -> int:
    from local.parameters import read_template
    from local.schedules import schedules_of

    if args.name is None:
        running = _running_schedules(args.api)
        if running is not None:
            for item in running["items"]:
                state = "" if item["enabled"] else " (disabled)"
                print(f"{item['name']}  {item['type']}  {item['expression']}{state}")
            for firing in running["firings"]:
                print(f"fired {firing['schedule']} at {firing['at']}: {firing.get('response', firing.get('error'))}")
            return 0
        template = read_template(args.template, _pairs(args.param, "--param"))
        schedules = schedules_of(template)
        if not schedules:
            print(f"{template.path.name} has no schedules (no Schedule or ScheduleV2 events on its functions).")
        for schedule in schedules:
            state = "" if schedule.enabled else " (disabled)"
            print(f"{schedule.key}  {schedule.kind}  {schedule.expression}{state}")
        print("(the template's schedules; start the stack with ./dev run to see the tenants' too)")
        return 0
    url = f"{args.api.rstrip('/')}/_local/schedules/{args.name}"
    if args.time:
        url += f"?time={urllib.request.quote(args.time)}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b""), timeout=960) as response:
            print(json.dumps(json.loads(response.read()), indent=2))
            return 0
    except urllib.error.HTTPError as error:
        print(error.read().decode(), file=sys.stderr)
    except urllib.error.URLError as error:
        print(f"No local stack answers at {args.api} ({error.reason}); start it with ./dev run", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    from local.parameters import DEFAULT_PORTS

    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the whole service on 127.0.0.1 (Ctrl-C stops it)")
    _template_options(run)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=DEFAULT_PORTS["api"], help="API gateway port (0: any free port)")
    run.add_argument("--aws-port", type=int, default=DEFAULT_PORTS["aws"], help="moto (AWS endpoint) port")
    run.add_argument("--upstream-port", type=int, default=DEFAULT_PORTS["upstream"], help="sample upstream port")
    run.add_argument("--region", default="eu-west-1")
    run.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="variable for every function, over the template's own (repeatable)",
    )
    run.add_argument(
        "--visibility-timeout",
        type=int,
        metavar="SEC",
        help="every queue's VisibilityTimeout (the template's 5400 s brings a failed message back after 90 min)",
    )
    run.add_argument("--ready-file", type=Path, help="write the URLs here as JSON once everything is up")
    run.set_defaults(handler=_run)

    token = commands.add_parser("token", help="print a development JWT the local gateway accepts")
    _template_options(token)
    token.add_argument("--tenant", required=True)
    token.add_argument("--role", action="append", required=True, help="tenant_admin, farm_manager, … (repeatable)")
    token.add_argument("--sub", help="subject (requested_by); default dev-ROLE")
    token.add_argument("--ttl", type=int, default=12 * 3600, help="lifetime in seconds (default 12 h)")
    token.set_defaults(handler=_token)

    schedule = commands.add_parser(
        "schedule",
        help="list the schedules (the template's; the tenants' too on a running stack), or fire one",
    )
    _template_options(schedule)
    schedule.add_argument(
        "name",
        nargs="?",
        help="FunctionLogicalId.EventName (or the event name), or a tenant schedule's id",
    )
    schedule.add_argument("--api", default=f"http://127.0.0.1:{DEFAULT_PORTS['api']}", help="the running stack's API")
    schedule.add_argument("--time", help="scheduled time to fire as (ISO 8601; default now)")
    schedule.set_defaults(handler=_schedule)

    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
