"""moto in server mode as the local AWS endpoint, with Step Functions executions enabled.

Requests are handled one at a time. moto's backends do not guard against concurrent requests:
a cancelled DynamoDB transaction, for one, restores a table snapshot taken before a concurrent
commit, losing it. Real DynamoDB applies each request atomically, so one request at a time is
the faithful choice here (the callers still run in parallel); it also means nothing may long
poll SQS against this endpoint.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.request
from typing import Any

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

# Credentials moto accepts; they must never be real ones.
ACCESS_KEY_ID = "local"
SECRET_ACCESS_KEY = "local-secret"


class SerializedMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer whose WSGI app runs one request at a time (see the module's docstring)."""

    def _server_entry(self) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        lock = threading.Lock()

        def one_at_a_time(environ: dict[str, Any], start_response: Any) -> Any:
            with lock:
                return app(environ, start_response)

        self._server = make_server(
            self._ip_address, self._port, one_at_a_time, threaded=True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


class _AbsentPathLookups(logging.Filter):
    """moto's ASL interpreter logs, as an error, each path a Choice finds absent (IsPresent checks).
    Those are the state machine working as designed; real task failures still get through."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg % record.args if record.args else record.msg).startswith(
            "Exception=NoSuchJsonPathError"
        )


class LocalAws:
    def __init__(self, host: str, port: int, region: str) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per AWS call
        logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").addFilter(_AbsentPathLookups())
        self._server = SerializedMotoServer(ip_address=host, port=port, verbose=False)
        self.region = region
        self.endpoint = ""
        self._session = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY, region_name=region
        )
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()

    def start(self) -> None:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        # moto's Step Functions executor calls the other services through the server on this port.
        os.environ["MOTO_PORT"] = str(port)
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        self._server.stop()

    def client(self, service: str) -> Any:
        """A client of this endpoint (one per service, shared: boto3 clients are thread-safe)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._session.client(
                    service, endpoint_url=self.endpoint, config=Config(retries={"mode": "standard", "max_attempts": 3})
                )
            return self._clients[service]

    def runtime_variables(self) -> dict[str, str]:
        """What a function needs to reach this endpoint instead of AWS, with credentials that are not real."""
        return {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            "AWS_SESSION_TOKEN": "local-session",
            "AWS_ENDPOINT_URL": self.endpoint,
            # No shared config or credentials file, and no instance metadata: nothing real is picked up.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
