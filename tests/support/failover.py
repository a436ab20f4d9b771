"""Operator replicas as processes against one kmock API server: the helpers of the failover tests.

See ``tests/integration/operator_failover/conftest.py`` for how the replicas and kmock are set up.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import kmock as kmocklib
import yaml

from kubeoidc_contract import GROUP, PLURAL, VERSION
from kubeoidc_operator.peering import PEERING_GROUP, PEERING_PLURAL, PEERING_VERSION
from support.kmock_api import KmockWriter

PEERING = "kubeoidc"
CLIENTS = kmocklib.resource(GROUP, VERSION, PLURAL)
SECRETS = kmocklib.resource("", "v1", "secrets")
PEERINGS = kmocklib.resource(PEERING_GROUP, PEERING_VERSION, PEERING_PLURAL)
TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Replica:
    """One operator process: started with a peering priority, stopped politely or killed."""

    def __init__(self, name: str, kmock_url: str, workdir: Path, environment: dict[str, str]) -> None:
        self.name = name
        self.token = f"token-{name}"
        self.log = workdir / f"operator-{name}.log"
        self.kubeconfig = workdir / f"kubeconfig-{name}.yaml"
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": kmock_url}}],
            "users": [{"name": name, "user": {"token": self.token}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": name}}],
            "current-context": "kmock",
        }
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig))
        self.environment = environment
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, **settings: str) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("KUBEOIDC_")}
        env.pop("KUBERNETES_SERVICE_HOST", None)  # Never the in-cluster configuration.
        env |= self.environment
        env |= {f"KUBEOIDC_OPERATOR_{key.upper()}": value for key, value in settings.items()}
        env |= {"KUBECONFIG": str(self.kubeconfig), "PYTHONUNBUFFERED": "1"}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "kubeoidc.cli", "operator"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def sent(self, request: Any) -> bool:
        return bool(request.headers.get("Authorization") == f"Bearer {self.token}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def kill(self) -> None:
        """SIGKILL: no clean exit, the peering record stays until it expires."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait, TIMEOUT)

    async def stop(self) -> None:
        if not self.alive:
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            await asyncio.to_thread(self.process.wait, TIMEOUT)

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ---\n" + "\n".join(text.splitlines()[-lines:])


class Cluster(KmockWriter):
    """kmock as the API server the replicas share, with the test's reads and writes."""

    timeout = TIMEOUT  # replicas start as processes: longer than in-process kopf

    def objects(self, resource: Any) -> dict[str, dict[str, Any]]:
        """The live objects of a resource, by name (straight from kmock's memory)."""
        found: dict[str, dict[str, Any]] = {}
        for key, history in list(self.server.objects.items()):
            if key[0] == resource and not history.deleted:
                found[key[2]] = history.raw
        return found

    def peers(self) -> dict[str, Any]:
        status = self.objects(PEERINGS).get(PEERING, {}).get("status")
        return status if isinstance(status, dict) else {}

    def requests(self, *, by: Replica | None = None, resource: Any = None) -> list[Any]:
        return [
            request
            for request in list(self.server)
            if (by is None or by.sent(request)) and (resource is None or request.resource == resource)
        ]

    def watching(self, replica: Replica, resource: Any) -> bool:
        return any(
            request.action == kmocklib.action.WATCH
            for request in self.requests(by=replica, resource=resource)
        )
