"""The whole service on 127.0.0.1, driven by template.yaml: moto as AWS, the template's resources, the
functions' real handlers, the HTTP API gateway, the SQS worker, a sample upstream and the notifications.

What is specific to this service (local values for the parameters the template leaves open,
the demo tenants, the example requests) is here; the machinery in the other modules reads
whatever template it is given.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from local.aws import LocalAws
from local.gateway import Authorizer, Gateway, http_routes, jwt_authorizers
from local.notifications import NotificationFeed
from local.parameters import DEFAULT_PORTS, read_template, token_settings
from local.resources import Deployment, assign_physical_ids, deploy
from local.runtime import FunctionError, LocalFunction, function_specs
from local.schedules import (
    Schedule,
    SchedulerSchedule,
    register_schedules,
    schedule_event,
    scheduler_input,
    scheduler_schedules,
    schedules_of,
)
from local.template import TEMPLATE_PATH, Template, load_template
from local.tokens import DEFAULT_KEY_FILE, JwtVerifier, TokenSettings, load_or_create_key, mint
from local.worker import QueuePoller, QueueSource, sqs_sources

DEMO_TENANTS = ("tenant-a", "tenant-b")
# API Gateway invokes a function concurrently; here up to four processes per API function, started on demand.
API_CONCURRENCY = 4

# Settings of the functions' process that are about running on this machine, not about the service:
# there is no X-Ray daemon to send traces to, and metrics (EMF lines) would drown the logs.
LOCAL_RUNTIME_VARIABLES = {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"}


@dataclass
class StackOptions:
    template: Path = TEMPLATE_PATH
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORTS["api"]
    aws_port: int = DEFAULT_PORTS["aws"]
    upstream_port: int = DEFAULT_PORTS["upstream"]
    region: str = "eu-west-1"
    parameters: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)  # variables for every function, over the template's
    key_file: Path = DEFAULT_KEY_FILE
    visibility_timeout: int | None = None  # overrides every queue's VisibilityTimeout (demos, tests)
    ready_file: Path | None = None


class LocalStack:
    def __init__(self, options: StackOptions, *, log: Callable[[str], None] | None = None) -> None:
        self.options = options
        self._log = log or _print
        self._stoppers: list[Callable[[], None]] = []
        self.api_url = ""
        self.upstream_url = ""
        self.aws_endpoint = ""
        self.template: Template | None = None
        self.deployment = Deployment()
        self.schedules: list[Schedule] = []
        self._functions: dict[str, LocalFunction] = {}
        self._notifications: NotificationFeed | None = None
        self._aws: LocalAws | None = None
        self._started = time.monotonic()
        # Each firing on demand, newest last (GET /_local/schedules shows them), bounded for a long session.
        self._firings: deque[dict[str, Any]] = deque(maxlen=100)

    def start(self) -> None:
        """Start everything; on failure, stop what was started and raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        options = self.options
        aws = LocalAws(options.host, options.aws_port, options.region)
        aws.start()
        self._stoppers.append(aws.stop)
        self.aws_endpoint = aws.endpoint
        self._aws = aws

        _make_layers_importable(options.template)
        from local.upstream import SampleUpstream  # shapes its records with the layer's report definitions

        upstream = SampleUpstream(options.host, options.upstream_port, record_requests=False).start()
        self._stoppers.append(upstream.stop)
        self.upstream_url = upstream.url

        # Bound now, served once the functions are up: its URL goes into their environment.
        gateway = Gateway(options.host, options.port, log=self._log)
        self._stoppers.append(gateway.stop)
        self.api_url = gateway.url

        template = self.template = read_template(
            options.template, options.parameters, region=options.region, upstream_url=upstream.url
        )
        assign_physical_ids(template, aws_endpoint=aws.endpoint, api_url=gateway.url)
        sources = sqs_sources(template)
        # Names are known before anything exists, so the functions cold-start while the resources are created.
        self._begin_functions(template, aws, sources)
        self.deployment = deploy(template, aws.client, visibility_timeout=options.visibility_timeout)
        self.schedules = schedules_of(template)
        register_schedules(template, self.schedules, aws.client("scheduler"), aws.client("events"))
        for function in self._functions.values():
            function.finish_start()

        topics = {topic: template.physical.refs[topic] for topic in template.resources_of_type("AWS::SNS::Topic")}
        self._notifications = NotificationFeed(aws.client("sqs"), aws.client("sns"), topics, log=self._log)
        self._notifications.start()
        self._stoppers.append(self._notifications.stop)
        self._start_pollers(template, aws, sources)

        apis = template.resources_of_type("AWS::Serverless::HttpApi")
        cors = next((template.resolve(template.api_properties(api).get("CorsConfiguration")) for api in apis), None)
        gateway.serve(
            http_routes(template),
            self._functions,
            self._authorizers(template),
            api_ids={api: str(template.physical.refs[api]) for api in apis},
            cors=cors if isinstance(cors, dict) else None,
            local_endpoints=self._local_endpoint,
        )
        if options.ready_file is not None:
            _write_atomically(options.ready_file, json.dumps(self.describe(), indent=2))

    def _begin_functions(self, template: Template, aws: LocalAws, sources: list[QueueSource]) -> None:
        runtime_variables = {**aws.runtime_variables(), **LOCAL_RUNTIME_VARIABLES}
        api_urls = _default_api_urls(template)
        for logical_id, spec in function_specs(template).items():
            # Links the functions hand out (the e-mail's file link) point at this gateway.
            environment = {name: _replace_all(text, api_urls, self.api_url) for name, text in spec.environment.items()}
            # --env has the last word, the template's own variables included (a short lease for a demo or a test).
            environment.update(self.options.environment)
            concurrency = max(
                [source.concurrency for source in sources if source.function == logical_id], default=API_CONCURRENCY
            )
            function = LocalFunction(replace(spec, environment=environment), runtime_variables, concurrency)
            self._functions[logical_id] = function
            self._stoppers.append(function.stop)
            function.begin_start()

    def _start_pollers(self, template: Template, aws: LocalAws, sources: list[QueueSource]) -> None:
        queue_urls = {
            template.physical.attributes[(queue, "Arn")]: template.physical.refs[queue]
            for queue in template.resources_of_type("AWS::SQS::Queue")
        }
        for source in sources:
            if not source.enabled:
                continue
            poller = QueuePoller(
                source,
                queue_url=queue_urls[source.queue_arn],
                sqs=aws.client("sqs"),
                function=self._functions[source.function],
                region=self.options.region,
                log=self._log,
            )
            poller.start()
            self._stoppers.append(poller.stop)

    def _authorizers(self, template: Template) -> dict[tuple[str, str], Authorizer]:
        public_key = load_or_create_key(self.options.key_file).public_key()
        claims = token_settings(template)
        return {
            key: Authorizer(
                JwtVerifier(
                    public_key,
                    TokenSettings(
                        issuer=str(config["issuer"]),
                        audiences=tuple(str(item) for item in config["audience"]),
                        tenant_claim=claims.tenant_claim,
                        roles_claim=claims.roles_claim,
                    ),
                ),
                header=str(config["identity_source"]).rsplit(".", 1)[-1].lower(),
            )
            for key, config in jwt_authorizers(template).items()
        }

    def stop(self) -> None:
        for function in self._functions.values():
            function.stop(wait=False)  # first, so their processes exit while the rest stops
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception as error:  # keep stopping the rest; say what would not stop
                self._log(f"[stack] stopping {getattr(stopper, '__qualname__', stopper)} failed: {error}")

    def describe(self) -> dict[str, Any]:
        template = self.template
        settings = token_settings(template) if template else None
        return {
            "api": self.api_url,
            "swagger_ui": f"{self.api_url}/api-docs",
            "aws": self.aws_endpoint,
            "upstream": self.upstream_url,
            "issuer": settings.issuer if settings else None,
            "audience": settings.audiences[0] if settings else None,
            "key_file": str(self.options.key_file),
            "pid": os.getpid(),
        }

    # The stack's own endpoints on the gateway, under /_local/

    def _local_endpoint(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any] | None:
        if path == "/_local/notifications" and method == "GET":
            return 200, {"items": self._notifications.items() if self._notifications else []}
        if path == "/_local/status" and method == "GET":
            return 200, self._status()
        if path == "/_local/schedules" and method == "GET":
            items = [schedule.describe() for schedule in self.schedules]
            items += [schedule.describe() for schedule in self._scheduler_schedules()]
            return 200, {"items": items, "firings": list(self._firings)}
        if path.startswith("/_local/schedules/") and method == "POST":
            return self._fire(path.removeprefix("/_local/schedules/"), query.get("time"))
        return None

    def _status(self) -> dict[str, Any]:
        """How much the stack's own process holds: moto keeps every object and item it stores in memory."""
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return {
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self._started, 1),
            "rss_mb": round(_resident_kib() / 1024, 1),
            "peak_rss_mb": round(peak_kib / 1024, 1),
            "note": "moto holds every object, item and message in this process; restart the stack to free it",
            "functions": {logical_id: function.processes() for logical_id, function in self._functions.items()},
        }

    def _scheduler_schedules(self) -> list[SchedulerSchedule]:
        assert self._aws is not None, "start() first"
        return scheduler_schedules(self._aws.client("scheduler"), exclude={item.name for item in self.schedules})

    def _fire(self, key: str, at_text: str | None) -> tuple[int, Any]:
        try:
            at = datetime.fromisoformat(at_text.replace("Z", "+00:00")) if at_text else datetime.now(UTC)
        except ValueError:
            return 400, {"message": f"time={at_text} is not an ISO 8601 date-time"}
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        schedule = next((schedule for schedule in self.schedules if key in (schedule.key, schedule.event)), None)
        if schedule is not None:
            event = schedule_event(schedule, at=at, region=self.options.region)
            return self._invoke(schedule.key, schedule.expression, schedule.function, event, at)
        # A tenant's schedule answers to its Scheduler name or to its id in the API (the name ends with it).
        created = [item for item in self._scheduler_schedules() if key == item.name or item.name.endswith(f"-{key}")]
        if len(created) != 1:
            known = [item.key for item in self.schedules] + [item.name for item in self._scheduler_schedules()]
            return 404, {"message": f"no schedule {key}", "schedules": known}
        found = created[0]
        function = self._function_of(found.target_arn)
        if function is None:
            return 404, {"message": f"schedule {key} targets {found.target_arn}, not a function of the template"}
        event = scheduler_input(found.input, arn=found.arn, at=at)
        return self._invoke(found.name, found.expression, function, event, at)

    def _invoke(self, name: str, expression: str, function: str, event: Any, at: datetime) -> tuple[int, Any]:
        self._log(f"[schedule] firing {name} ({expression}) at {at.isoformat()}")
        firing: dict[str, Any] = {"schedule": name, "at": at.isoformat(), "event": event}
        try:
            firing["response"] = self._functions[function].invoke(event)
        except FunctionError as error:
            firing["error"] = str(error)
        self._firings.append(firing)
        self._log(f"[schedule] {name}: {firing.get('response', firing.get('error'))}")
        return (502 if "error" in firing else 200), firing

    def _function_of(self, arn: str) -> str | None:
        assert self.template is not None, "start() first"
        attributes = self.template.physical.attributes
        return next((logical for logical in self._functions if attributes.get((logical, "Arn")) == arn), None)

    # What a developer needs to start

    def banner(self) -> str:
        template = self.template
        assert template is not None, "start() first"
        settings = token_settings(template)
        key = load_or_create_key(self.options.key_file)
        lines = [
            f"Report export service, running locally from {template.path.name} (no AWS account, no Docker)",
            "",
            f"  API          {self.api_url}",
            f"  Swagger UI   {self.api_url}/api-docs",
            f"  AWS (moto)   {self.aws_endpoint}   e.g. aws --endpoint-url {self.aws_endpoint} s3 ls",
            f"  Upstream     {self.upstream_url}   knobs: curl -X PUT {self.upstream_url}/_knobs "
            """-d '{"delay_sec": 1}'""",
            f"  Notifications are printed here as they arrive; also GET {self.api_url}/_local/notifications",
            f"  Memory       GET {self.api_url}/_local/status (moto keeps all it stores in memory)",
            f"  Schedules    {len(self.schedules)} in the template"
            + (f": fire one with ./dev schedule NAME --api {self.api_url}" if self.schedules else ""),
            f"  Resources    {len(self.deployment.created)} created in moto from the template; functions "
            + ", ".join(self._functions),
        ]
        lines += [f"  Not emulated {item}" for item in _unemulated(template, self.deployment)]
        lines += [
            "",
            f"Tokens (RS256, iss {settings.issuer}, aud {settings.audiences[0]}, valid 12 h;",
            "        others: ./dev token --tenant TENANT --role ROLE):",
        ]
        from report_export.core.models.common import Role

        for tenant in DEMO_TENANTS:
            for role in Role:
                token = mint(key, settings, tenant=tenant, roles=[role.value], subject=f"{tenant}-{role.value}")
                lines.append(f"  {tenant} {role.value:<15} {token}")
        example_token = mint(key, settings, tenant=DEMO_TENANTS[0], roles=["farm_manager"])
        lines += [
            "",
            "Try (as tenant-a, farm_manager):",
            f"  export API={self.api_url}",
            f"  export TOKEN={example_token}",
            '  curl -s -X POST "$API/api/v1/reports/jobs" -H "Authorization: Bearer $TOKEN" '
            '-H "Content-Type: application/json" \\',
            """      -d '{"job_type": "FEED_INTAKE_EXPORT", "format": "csv", "farm_id": "farm-1", """
            """"start_date": "2025-01-01", "end_date": "2025-01-31"}'""",
            '  curl -s -H "Authorization: Bearer $TOKEN" "$API/api/v1/reports/jobs?limit=5"',
            '  curl -s -H "Authorization: Bearer $TOKEN" "$API/api/v1/reports/jobs/JOB_ID/download"',
            "",
            "Ctrl-C stops everything.",
        ]
        return "\n".join(lines)


_EMULATED_EVENTS = ("HttpApi", "SQS", "Schedule", "ScheduleV2")


def _unemulated(template: Template, deployment: Deployment) -> list[str]:
    """What of the template does not run locally, so nobody expects it to."""
    found = [
        f"{logical_id} ({why})" for logical_id, why in deployment.skipped.items() if why == "not supported locally"
    ]
    for logical_id in template.resources_of_type("AWS::Serverless::Function"):
        for name, event in template.function_properties(logical_id).get("Events", {}).items():
            if event.get("Type") not in _EMULATED_EVENTS:
                found.append(f"{logical_id}.{name} (a {event.get('Type')} event)")
    return found


def _replace_all(text: str, olds: list[str], new: str) -> str:
    for old in olds:
        text = text.replace(old, new)
    return text


def _default_api_urls(template: Template) -> list[str]:
    """The execute-api URLs the HTTP APIs would have in AWS; locally they are the gateway."""
    return [
        f"https://{template.physical.refs[api]}.execute-api.{template.region}.{template.pseudo['AWS::URLSuffix']}"
        for api in template.resources_of_type("AWS::Serverless::HttpApi")
    ]


def _resident_kib() -> int:
    """The process's resident memory now (Linux /proc), or its peak where /proc is not there."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _make_layers_importable(template_path: Path) -> None:
    """The template's layer folders on this process's import path, as Lambda puts layers on /opt/python."""
    for declared in load_template(template_path).get("Resources", {}).values():
        if declared.get("Type") == "AWS::Serverless::LayerVersion":
            folder = str(template_path.parent / str(declared.get("Properties", {}).get("ContentUri", "")))
            if folder not in sys.path:
                sys.path.append(folder)


def _write_atomically(path: Path, text: str) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(text, encoding="utf-8")
    staging.replace(path)


def _print(message: str) -> None:
    print(message, flush=True)
