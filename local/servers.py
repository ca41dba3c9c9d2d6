"""The HTTP servers of the local stack (gateway, sample upstream)."""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class BurstServer(ThreadingHTTPServer):
    """A threading HTTP server whose listen backlog holds a burst of clients.

    socketserver listens with a backlog of 5: the sixth client connecting at the same moment is reset
    before it is answered, where API Gateway would queue it.
    """

    request_queue_size = 1024
