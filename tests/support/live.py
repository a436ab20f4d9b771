"""A provider served for real on a loopback port, for relying parties and browsers that speak HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from kubeoidc_provider.context import Provider
from support.provider import make_app, make_provider


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(provider: Provider, port: int) -> Iterator[str]:
    """Serve the provider's app on 127.0.0.1:port in a thread; yields the issuer."""
    app = make_app(provider)
    # As the provider's own server: forwarded headers are the app's to read, not uvicorn's.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-provider", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the provider did not start")
        time.sleep(0.01)
    try:
        yield provider.settings.issuer
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def live_provider(**options: Any) -> Iterator[Provider]:
    """A fresh provider, listening on a free port whose URL is its issuer."""
    port = free_port()
    provider = make_provider(issuer=f"http://127.0.0.1:{port}", **options)
    with serve(provider, port):
        yield provider
