"""A provider served over HTTPS in this process, with a CA made by the test: the issuer a cluster trusts."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from kubeoidc.local_tls import LocalTLS, ensure_local_tls
from kubeoidc_provider.app import create_app
from kubeoidc_provider.context import Provider
from kubeoidc_provider.main import uvicorn_server
from kubeoidc_provider.tls import TLSFiles


def client_context(tls: LocalTLS) -> ssl.SSLContext:
    """What a client that trusts the test's CA uses."""
    return ssl.create_default_context(cafile=str(tls.ca_file))


def make_tls(folder: Path) -> LocalTLS:
    return ensure_local_tls(folder)


@contextmanager
def serve_https(provider: Provider, *, check_interval: float = 0.2) -> Iterator[TLSFiles]:
    """Serve the provider on its settings' host and port, with its settings' TLS files; yields them."""
    settings = provider.settings
    assert settings.tls_cert_file is not None
    assert settings.tls_key_file is not None
    tls = TLSFiles(settings.tls_cert_file, settings.tls_key_file, check_interval=check_interval)
    server: uvicorn.Server = uvicorn_server(create_app(provider), settings, tls=tls, log_level="WARNING")
    tls.start()
    thread = threading.Thread(target=server.run, name="https-provider", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the HTTPS provider did not start")
        time.sleep(0.02)
    try:
        yield tls
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        tls.stop()
