"""The real operator (kopf + the production handlers) against the kmock API server, in one process.

kmock serves the API on the test's event loop; kopf runs in a thread with a loop of its own (so its
shutdown does not wait for kmock's connection tasks), logs in to kmock's URL, and its handlers reach
kmock through the operator's own API client (``kube``). kmock has no uid, resourceVersion, garbage
collection or 409 on stale writes, replays every object at each watch start and ignores label
selectors: the tests set uid and resourceVersion themselves, create objects only after the watches are
open, and assert only what a real API server would show too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import kmock as kmocklib
import kopf
import pytest

from kubeoidc_contract import GROUP, PLURAL, VERSION
from kubeoidc_contract.cluster_access import ClusterAccess
from kubeoidc_operator.handlers import register
from kubeoidc_operator.kube import KubeApi
from kubeoidc_operator.run import kopf_settings
from kubeoidc_operator.settings import OperatorSettings
from support.kmock_api import NAMESPACE, KmockWriter, declare_resources

CLIENTS = kmocklib.resource(GROUP, VERSION, PLURAL)
SECRETS = kmocklib.resource("", "v1", "secrets")
TIMEOUT = 10.0


class Harness(KmockWriter):
    """Drives kmock as a user with kubectl would, and waits for what the operator does."""

    timeout = TIMEOUT

    # Writes (request, create_client: KmockWriter's), through kmock's HTTP API so that watches see them.

    async def patch_client(self, name: str, patch: dict[str, Any]) -> None:
        await self.request("PATCH", f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}/{name}", patch)

    async def delete_client(self, name: str) -> None:
        await self.request("DELETE", f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}/{name}")

    async def create_secret(self, body: dict[str, Any]) -> None:
        await self.request("POST", f"/api/v1/namespaces/{NAMESPACE}/secrets", body)

    async def delete_secret(self, name: str) -> None:
        await self.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/secrets/{name}")

    # Reads, straight from kmock's memory.

    def client(self, name: str) -> dict[str, Any] | None:
        return self._get(CLIENTS, name)

    def secret(self, name: str) -> dict[str, Any] | None:
        return self._get(SECRETS, name)

    def _get(self, resource: Any, name: str) -> dict[str, Any] | None:
        key = (resource, NAMESPACE, name)
        if key not in self.server.objects or self.server.objects[key].deleted:
            return None
        raw: dict[str, Any] = self.server.objects[key].raw
        return raw

    def ready(self, name: str) -> dict[str, Any] | None:
        """The client's Ready condition, if it has one."""
        conditions = ((self.client(name) or {}).get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c.get("type") == "Ready"), None)

    def posted_events(self) -> list[dict[str, Any]]:
        """Every Event the operator posted, in order (from the requests: kmock keeps one per namespace)."""
        return [
            request.data
            for request in list(self.server)
            if request.method == kmocklib.method.POST and request.url.path.endswith("/events")
        ]

    def writes_to(self, path: str) -> list[Any]:
        return [
            request
            for request in list(self.server)
            if request.url.path == path and request.method != kmocklib.method.GET
        ]


def _watching(server: Any, resource: Any) -> bool:
    return any(
        request.action == kmocklib.action.WATCH and request.resource == resource for request in list(server)
    )


@pytest.fixture
def operator_settings() -> OperatorSettings:
    return OperatorSettings(issuer="https://login.example.com", resync_interval=0.5)


@pytest.fixture
async def operator(kmock: Any, operator_settings: OperatorSettings) -> AsyncIterator[Harness]:
    declare_resources(kmock)
    url = str(kmock.url).rstrip("/")

    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=url)

    api = KubeApi(ClusterAccess(url))
    register(registry, operator_settings, api)
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(
                kopf.operator(
                    registry=registry,
                    settings=kopf_settings(operator_settings),
                    standalone=True,
                    clusterwide=True,
                    stop_flag=stop,
                    ready_flag=ready,
                )
            )
        except BaseException as exc:  # pragma: no cover - reported by the fixture
            errors.append(exc)

    thread = threading.Thread(target=run, name="kopf", daemon=True)
    thread.start()
    harness = Harness(kmock)
    try:
        await harness.wait_for("kopf to start", ready.is_set)
        await harness.wait_for("the watches", lambda: _watching(kmock, CLIENTS) and _watching(kmock, SECRETS))
        yield harness
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, TIMEOUT)
        api.close()
    assert not thread.is_alive(), "kopf did not stop"
    assert errors == []
