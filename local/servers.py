"""The HTTP servers of the local stack (gateway, sample upstream)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class BurstServer(ThreadingHTTPServer):
    """A threading HTTP server whose listen backlog holds a burst of clients.

    socketserver listens with a backlog of 5: the sixth client connecting at the same moment is reset
    before it is answered, where API Gateway would queue it.
    """

    request_queue_size = 1024


class KeepAliveHandler(BaseHTTPRequestHandler):
    """A request handler that keeps connections alive (HTTP/1.1) and answers without Nagle's delay.

    http.server sends an answer's headers and its body in two writes: with Nagle's algorithm the body
    waits for the client's delayed ACK of the headers, some 40 ms on every answer of a kept-alive
    connection.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
