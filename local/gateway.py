"""A local HTTP gateway in the place of API Gateway's HTTP API: the template's routes, its JWT authorizer,
and payload format 2.0 events for the same handlers.

Each request is matched to a route of the template, checked against the route's JWT authorizer
(issuer, audience, expiry, signature by the local development key), turned into the event API
Gateway would send (the claims where the JWT authorizer puts them, flattened to strings as it
does), and the function's answer is turned back into HTTP. Answers the gateway gives itself
(no route, no valid token, a failed function) have API Gateway's bodies.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.runtime import FunctionError, LocalFunction
from local.servers import BurstServer, KeepAliveHandler
from local.template import ACCOUNT_ID, Template
from local.tokens import InvalidToken, JwtVerifier, authorizer_claims

LOCAL_PREFIX = "/_local/"  # the stack's own endpoints (notifications, schedules); not routes of the template
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "+json", "+xml", "urlencoded")

# Answers for the request and the local endpoints: status, headers, body.
Reply = tuple[int, list[tuple[str, str]], bytes]
LocalEndpoints = Callable[[str, str, dict[str, str], bytes], tuple[int, Any] | None]


@dataclass(frozen=True)
class Route:
    api: str  # logical id of the HttpApi
    method: str  # GET, POST, … or ANY
    path: str  # as in the template: /api/v1/reports/jobs/{jobId}
    function: str  # logical id of the function that serves it
    authorizer: str | None  # None: no authorization (Auth: {Authorizer: NONE})

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def specificity(self) -> tuple[int, int, int]:
        """API Gateway prefers literal paths, then parameters, then greedy {proxy+}; a method over ANY."""
        return (self.path.count("+}"), self.path.count("{"), self.method == "ANY")

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(self.path))
        return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self._pattern.fullmatch(path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class Authorizer:
    verifier: JwtVerifier
    header: str  # lower-case name of the header in IdentitySource


def http_routes(template: Template) -> list[Route]:
    """Every HttpApi event of every function, most specific first."""
    routes = []
    for logical_id in template.resources_of_type("AWS::Serverless::Function"):
        events = template.function_properties(logical_id).get("Events", {})
        for event in events.values():
            if event.get("Type") != "HttpApi":
                continue
            props = template.resolve(event.get("Properties", {}))
            # The API by logical id (before resolution): a function without ApiId joins SAM's implicit API.
            api_ref = event.get("Properties", {}).get("ApiId", {"Ref": "ServerlessHttpApi"})
            api = str(api_ref.get("Ref")) if isinstance(api_ref, Mapping) else str(api_ref)
            api_auth = template.api_properties(api).get("Auth", {}) if api in template.resources else {}
            default = api_auth.get("DefaultAuthorizer")
            authorizer = props.get("Auth", {}).get("Authorizer", default)
            routes.append(
                Route(
                    api=api,
                    method=str(props.get("Method", "ANY")).upper(),
                    path=str(props.get("Path", "/")),
                    function=logical_id,
                    authorizer=None if authorizer in (None, "NONE") else str(authorizer),
                )
            )
    return sorted(routes, key=lambda route: route.specificity)


def jwt_authorizers(template: Template) -> dict[tuple[str, str], dict[str, Any]]:
    """(api, authorizer name) -> its resolved JwtConfiguration and IdentitySource."""
    found = {}
    for api in template.resources_of_type("AWS::Serverless::HttpApi"):
        auth = template.resolve(template.api_properties(api).get("Auth", {}))
        for name, config in auth.get("Authorizers", {}).items():
            if "JwtConfiguration" in config:
                audience = config["JwtConfiguration"].get("audience", [])
                found[(api, name)] = {
                    "issuer": config["JwtConfiguration"]["issuer"],
                    "audience": [audience] if isinstance(audience, str) else list(audience),
                    "identity_source": config.get("IdentitySource", "$request.header.Authorization"),
                }
    return found


def joined_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """Headers as API Gateway hands them on (and reads them for its authorizer): names in lower case, a
    header sent twice joined with a comma, so two Authorization headers make one token that fails."""
    joined: dict[str, str] = {}
    for name, value in headers:
        name = name.lower()
        separator = ";" if name == "cookie" else ","
        joined[name] = f"{joined[name]}{separator}{value}" if name in joined else value
    return joined


def http_api_event(
    route: Route,
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    path_parameters: dict[str, str],
    claims: Mapping[str, Any] | None,
    api_id: str,
    domain: str,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for one request."""
    joined = joined_headers(headers)
    cookies = [part.strip() for part in joined.pop("cookie", "").split(";") if part.strip()]
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = datetime.now(UTC)
    request_id = new_request_id()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": authorizer_claims(claims), "scopes": None}}
    if body:
        content_type = joined.get("content-type", "")
        if any(kind in content_type for kind in _TEXT_TYPES) or not content_type:
            try:
                event["body"] = body.decode()
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


def http_response(result: Any) -> Reply:
    """The HTTP answer API Gateway makes of a payload format 2.0 response."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # Without a statusCode, API Gateway takes the whole result as a JSON body.
        return 200, [("Content-Type", "application/json")], json.dumps(result).encode()
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return int(result["statusCode"]), headers, payload


def new_request_id() -> str:
    """An id of the shape API Gateway gives a request (its apigw-requestid header)."""
    return base64.b64encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")


def _message(status: int, message: str, *extra: tuple[str, str], request_id: str | None = None) -> Reply:
    # The gateway's own answers carry a request id too, as API Gateway's do: it is what a caller quotes.
    headers = [("Content-Type", "application/json"), ("apigw-requestid", request_id or new_request_id()), *extra]
    return status, headers, json.dumps({"message": message}).encode()


class Gateway:
    """Serves the template's HTTP API routes on host:port."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        log: Callable[[str], None] = print,
    ) -> None:
        self._server = BurstServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="gateway", daemon=True
        )
        self._routes: list[Route] = []
        self._functions: Mapping[str, LocalFunction] = {}
        self._authorizers: Mapping[tuple[str, str], Authorizer] = {}
        self._api_ids: Mapping[str, str] = {}
        self._cors: dict[str, Any] | None = None
        self._local_endpoints: LocalEndpoints | None = None
        self._log = log

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def serve(
        self,
        routes: list[Route],
        functions: Mapping[str, LocalFunction],
        authorizers: Mapping[tuple[str, str], Authorizer],
        *,
        api_ids: Mapping[str, str],
        cors: dict[str, Any] | None = None,
        local_endpoints: LocalEndpoints | None = None,
    ) -> None:
        """Start answering (the socket is bound at construction, so its URL can go into the functions' environment)."""
        self._routes, self._functions, self._authorizers = routes, functions, authorizers
        self._api_ids, self._cors, self._local_endpoints = api_ids, cors, local_endpoints
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str) -> Reply:
        split = urlsplit(target)
        path, raw_query = split.path or "/", split.query
        header_map = joined_headers(headers)
        if path.startswith(LOCAL_PREFIX) and self._local_endpoints is not None:
            query = dict(parse_qsl(raw_query, keep_blank_values=True))
            answer = self._local_endpoints(method, path, query, body)
            if answer is not None:
                status, payload = answer
                return status, [("Content-Type", "application/json")], json.dumps(payload, indent=2).encode()
        if method == "OPTIONS" and self._cors and "access-control-request-method" in header_map:
            return 204, self._cors_headers(header_map, preflight=True), b""
        for route in self._routes:
            path_parameters = route.match(method, path)
            if path_parameters is None:
                continue
            claims = None
            if route.authorizer is not None:
                authorizer = self._authorizers[(route.api, route.authorizer)]
                try:
                    claims = authorizer.verifier.claims(header_map.get(authorizer.header))
                except InvalidToken as error:
                    challenge = f'Bearer scope="" error="invalid_token" error_description="{error}"'
                    return _message(401, "Unauthorized", ("www-authenticate", challenge))
            event = http_api_event(
                route,
                method=method,
                raw_path=path,
                raw_query=raw_query,
                headers=headers,
                body=body,
                source_ip=source_ip,
                path_parameters=path_parameters,
                claims=claims,
                api_id=self._api_ids.get(route.api, route.api.lower()),
                domain=header_map.get("host", "127.0.0.1").split(":")[0],
            )
            # The request's own id, which its function saw (and logged) as the requestId of its event.
            request_id = event["requestContext"]["requestId"]
            try:
                status, reply_headers, payload = http_response(self._functions[route.function].invoke(event))
                reply_headers.append(("apigw-requestid", request_id))
            except FunctionError as error:
                self._log(f"[gateway] {route.function} failed: {error}")
                status, reply_headers, payload = _message(500, "Internal Server Error", request_id=request_id)
            return status, reply_headers + self._cors_headers(header_map, preflight=False), payload
        return _message(404, "Not Found")

    def _cors_headers(self, request_headers: Mapping[str, str], *, preflight: bool) -> list[tuple[str, str]]:
        origin = request_headers.get("origin")
        if not self._cors or not origin:
            return []
        allowed = [str(item) for item in self._cors.get("AllowOrigins", [])]
        if "*" not in allowed and origin not in allowed:
            return []
        headers = [("Access-Control-Allow-Origin", "*" if "*" in allowed else origin)]
        if preflight:
            headers.append(("Access-Control-Allow-Methods", ",".join(self._cors.get("AllowMethods", []))))
            headers.append(("Access-Control-Allow-Headers", ",".join(self._cors.get("AllowHeaders", []))))
            if "MaxAge" in self._cors:
                headers.append(("Access-Control-Max-Age", str(self._cors["MaxAge"])))
        elif self._cors.get("ExposeHeaders"):
            headers.append(("Access-Control-Expose-Headers", ",".join(self._cors["ExposeHeaders"])))
        return headers

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(KeepAliveHandler):
            def _serve(self) -> None:
                started = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, payload = gateway.handle(
                    self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                )
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection", "date"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                elapsed_ms = (time.monotonic() - started) * 1000
                gateway._log(f"[gateway] {self.command} {urlsplit(self.path).path} -> {status} ({elapsed_ms:.0f} ms)")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _serve  # noqa: N815

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                # http.server answers a method it has no handler for (TRACE, CONNECT, made-up ones) with 501
                # and a bad request line with an HTML page: API Gateway answers with JSON, and so does this.
                status, error_code = (405, "METHOD_NOT_ALLOWED") if code == 501 else (code, "BAD_REQUEST")
                text = "This method is not allowed" if status == 405 else (message or "The request is malformed")
                request_id = new_request_id()
                envelope = {"error": {"code": error_code, "message": text, "traceId": request_id}}
                payload = json.dumps(envelope).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("apigw-requestid", request_id)
                if status == 405:
                    self.send_header("Allow", "GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
                gateway._log(f"[gateway] {self.command} -> {status}")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per request is written by _serve

        return Handler
