"""One provider replica in a process of its own, for tests that run several behind one issuer.

Run as ``python -m support.replica CONFIG.json`` with ``tests`` on ``PYTHONPATH``. The configuration
(written by :func:`write_config`) holds the issuer, the port, the storage URL, the private JWKS, the
users YAML, the OIDCClient and Secret objects to register, and any further provider settings. The
provider is built as :mod:`support.provider` builds it, but on the given storage, and served by the
provider's own :func:`kubeoidc_provider.main.serve` on ``127.0.0.1:port``. The process prints ``ready``
once the port accepts connections, and stops on SIGTERM.

With ``"workers": N`` in the settings, the replica is N forked worker processes on the one port, as
``kubeoidc provider --workers N`` runs them; each answer then names the worker that gave it in the
header ``x-test-worker`` (its process id), so a test can tell the workers apart.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kubeoidc_provider.app import build_provider, create_app
from kubeoidc_provider.context import Provider
from kubeoidc_provider.keys import KeySet
from kubeoidc_provider.listeners import listen
from kubeoidc_provider.main import serve
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.storage import open_storage
from kubeoidc_provider.users import StaticUserDirectory
from kubeoidc_provider.workers import serve_forked
from support.provider import signing_jwks, users_yaml

READY = "ready"


def write_config(
    path: Path,
    *,
    issuer: str,
    port: int,
    storage_url: str,
    clients: Iterable[tuple[dict[str, Any], dict[str, Any]]],
    users: str | None = None,
    alg: str = "RS256",
    settings: dict[str, Any] | None = None,
) -> Path:
    """Write one replica's configuration; replicas of one provider share all of it but the port."""
    config = {
        "issuer": issuer,
        "port": port,
        "storage_url": storage_url,
        "jwks": signing_jwks(alg),
        "users": users if users is not None else users_yaml(),
        "clients": [list(pair) for pair in clients],
        "settings": settings or {},
    }
    path.write_text(json.dumps(config))
    return path


def build(config: dict[str, Any]) -> Provider:
    """The provider a configuration describes, as :func:`support.provider.make_provider` builds one."""
    settings = ProviderSettings(
        issuer=config["issuer"],
        host="127.0.0.1",
        port=config["port"],
        storage_url=config["storage_url"],
        **config.get("settings", {}),
    )
    registry = ClientRegistry()
    registry.mark_ready()
    for oidcclient, secret in config["clients"]:
        registry.upsert_oidcclient(oidcclient)
        registry.upsert_secret(secret)
    return build_provider(
        settings,
        registry=registry,
        users=StaticUserDirectory.from_yaml(config["users"]),
        keys=KeySet.from_jwks(config["jwks"]),
        storage=open_storage(settings.storage_url),
    )


def _announce_when_listening(port: int, timeout: float = 30.0) -> None:
    """Print ``ready`` once the port accepts a connection (uvicorn offers no hook of its own)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                # One write of the whole line: forked workers share this output, and print() would write
                # the text and its newline apart, so a worker's line could land between them.
                sys.stdout.write(f"{READY}\n")
                sys.stdout.flush()
                return
        except OSError:
            time.sleep(0.02)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m support.replica CONFIG.json")
    config = json.loads(Path(args[0]).read_text())
    workers = int(config.get("settings", {}).get("workers", 1))
    threading.Thread(
        target=_announce_when_listening, args=(config["port"],), name="announce", daemon=True
    ).start()
    if workers == 1:
        provider = build(config)
        serve(create_app(provider), provider.settings)
        return
    sockets = [listen("127.0.0.1", config["port"])]

    def serve_one(inherited: list[socket.socket]) -> None:
        provider = build(config)
        serve(_WorkerHeader(create_app(provider)), provider.settings, sockets=inherited)

    raise SystemExit(serve_forked(workers, sockets, serve_one))


class _WorkerHeader:
    """Adds ``x-test-worker: <pid>`` to every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-test-worker", str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_header)


if __name__ == "__main__":
    main()
