"""One server, two listeners: the public port serves the provider, the health port its probes and metrics.

uvicorn serves every socket it is given with one app (and one lifespan, one event loop, one set of
signal handlers); :class:`ByListener` sends each connection to the app of the port it arrived on, so
``/healthz``, ``/readyz`` and ``/metrics`` answer on the health port only, and 404 on the public one.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ByListener", "listen"]


class ByListener:
    """ASGI app: requests to a port of ``by_port`` go to its app, all others (and the lifespan) to ``app``."""

    def __init__(self, app: ASGIApp, by_port: Mapping[int, ASGIApp]) -> None:
        self.app = app
        self.by_port = dict(by_port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server") if scope["type"] in ("http", "websocket") else None
        target = self.by_port.get(server[1], self.app) if server else self.app
        await target(scope, receive, send)


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (IPv4 or IPv6), for uvicorn to listen on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
