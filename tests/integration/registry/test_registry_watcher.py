"""The registry watcher against the kmock API server: clients appear, rotate and vanish with their objects.

kmock serves the API on a local port from the test's event loop; the watcher's threads talk to it with
the real Kubernetes client. The test therefore never blocks the loop: it polls with ``asyncio.sleep``
and stops the watcher in a worker thread. Objects are created through the API (so that watches see
them) with the uid and status a real API server and the operator would have given them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import kmock as kmock_lib
import kubernetes
import pytest

import kubeoidc_contract as contract
from kubeoidc_provider.keys import KeySet, generate_jwks
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.signing import SecretFollower, SigningKeys
from kubeoidc_provider.watcher import FollowedSecret, RegistryWatcher
from support.kmock_api import declare_oidcclients, load_builtins

pytestmark = pytest.mark.kmock

OIDCCLIENTS = f"/apis/{contract.GROUP}/{contract.VERSION}/namespaces/{{namespace}}/{contract.PLURAL}"
SECRETS = "/api/v1/namespaces/{namespace}/secrets"
TIMEOUT = 5.0


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def oidcclient(name: str, client_id: str, *, namespace: str = "team-a") -> dict[str, Any]:
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.KIND,
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {"displayName": name.title(), "redirectURIs": [f"https://{name}.example.com/callback"]},
        "status": {"clientID": client_id, "secretName": f"{name}-oidc"},
    }


def client_secret(
    owner: dict[str, Any], client_secret: str, *, name: str | None = None, owned: bool = True
) -> dict[str, Any]:
    meta = owner["metadata"]
    owner_ref = {
        "apiVersion": contract.API_VERSION,
        "kind": contract.KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name or owner["status"]["secretName"],
            "namespace": meta["namespace"],
            "labels": {contract.MANAGED_BY_LABEL: contract.MANAGER, contract.CLIENT_LABEL: meta["name"]},
            "ownerReferences": [owner_ref] if owned else [],
        },
        "data": {
            contract.CLIENT_ID_KEY: b64(owner["status"]["clientID"]),
            contract.CLIENT_SECRET_KEY: b64(client_secret),
            contract.ISSUER_KEY: b64("https://id.example.com"),
        },
    }


async def eventually(predicate: Callable[[], bool], within: float = TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(0.02)


class Cluster:
    """Writes objects to the kmock API server the way a client of the API would."""

    def __init__(self, server: kmock_lib.KubernetesEmulator) -> None:
        self.server = server

    def declare_oidcclients(self) -> None:
        declare_oidcclients(self.server)

    async def create(self, obj: dict[str, Any]) -> None:
        async with self.server.post(self._collection(obj), json=obj) as response:
            assert response.status < 300, await response.text()

    async def patch(self, obj: dict[str, Any], patch: dict[str, Any]) -> None:
        async with self.server.patch(self._item(obj), json=patch) as response:
            assert response.status < 300, await response.text()

    async def delete(self, obj: dict[str, Any]) -> None:
        async with self.server.delete(self._item(obj)) as response:
            assert response.status < 300, await response.text()

    def _collection(self, obj: dict[str, Any]) -> str:
        template = SECRETS if obj["kind"] == "Secret" else OIDCCLIENTS
        return template.format(namespace=obj["metadata"]["namespace"])

    def _item(self, obj: dict[str, Any]) -> str:
        return f"{self._collection(obj)}/{obj['metadata']['name']}"


@pytest.fixture
def cluster(kmock: kmock_lib.KubernetesEmulator) -> Cluster:
    load_builtins(kmock)
    return Cluster(kmock)


@pytest.fixture
def api_client(kmock: kmock_lib.KubernetesEmulator) -> Iterator[Any]:
    configuration = kubernetes.client.Configuration()
    configuration.host = str(kmock.url).rstrip("/")
    client = kubernetes.client.ApiClient(configuration)
    yield client
    client.close()  # type: ignore[no-untyped-call]


@pytest.fixture
async def start_watcher(
    cluster: Cluster, api_client: Any
) -> AsyncIterator[Callable[..., tuple[ClientRegistry, RegistryWatcher]]]:
    watchers: list[RegistryWatcher] = []

    def start(namespaces: list[str] | None = None) -> tuple[ClientRegistry, RegistryWatcher]:
        registry = ClientRegistry()
        watcher = RegistryWatcher(registry, namespaces, api_client, backoff_initial=0.05, backoff_max=0.2)
        watcher.start()
        watchers.append(watcher)
        return registry, watcher

    yield start
    for watcher in watchers:
        await asyncio.to_thread(watcher.stop)


@pytest.fixture
async def ready_registry(
    cluster: Cluster, start_watcher: Callable[..., tuple[ClientRegistry, RegistryWatcher]]
) -> ClientRegistry:
    cluster.declare_oidcclients()
    registry, _ = start_watcher()
    await eventually(lambda: registry.ready)
    return registry


def accepts(registry: ClientRegistry, client_id: str, secret: str) -> bool:
    client = registry.get(client_id)
    return client is not None and client.check_secret(secret, time.time())


async def test_client_appears_when_its_oidcclient_and_secret_are_created(
    cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    app = oidcclient("app", "cid-app")
    await cluster.create(app)
    await cluster.create(client_secret(app, "s3cret-1"))

    await eventually(lambda: accepts(ready_registry, "cid-app", "s3cret-1"))
    client = ready_registry.get("cid-app")
    assert client is not None
    assert client.display_name == "App"
    assert client.redirect_uris == ("https://app.example.com/callback",)


async def test_clients_that_exist_before_the_start_are_served_after_the_first_list(
    cluster: Cluster, start_watcher: Callable[..., tuple[ClientRegistry, RegistryWatcher]]
) -> None:
    cluster.declare_oidcclients()
    app = oidcclient("app", "cid-app")
    await cluster.create(app)
    await cluster.create(client_secret(app, "s3cret-1"))

    registry, _ = start_watcher()

    await eventually(lambda: registry.ready)
    assert accepts(registry, "cid-app", "s3cret-1")


async def test_rotated_secret_is_refused_as_soon_as_the_secret_changes(
    cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    app = oidcclient("app", "cid-app")
    await cluster.create(app)
    secret = client_secret(app, "s3cret-1")
    await cluster.create(secret)
    await eventually(lambda: accepts(ready_registry, "cid-app", "s3cret-1"))

    await cluster.patch(secret, {"data": {contract.CLIENT_SECRET_KEY: b64("s3cret-2")}})

    await eventually(lambda: not accepts(ready_registry, "cid-app", "s3cret-1"), within=1.0)
    assert accepts(ready_registry, "cid-app", "s3cret-2")


async def test_forged_labelled_secret_with_a_copied_client_id_registers_nothing(
    cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    app = oidcclient("app", "cid-app")
    await cluster.create(app)
    await cluster.create(client_secret(app, "s3cret-1"))
    await eventually(lambda: accepts(ready_registry, "cid-app", "s3cret-1"))
    # In another namespace, a Secret with the label and the copied client ID but no ownership, and an
    # OIDCClient that names it while claiming the same client ID.
    intruder = oidcclient("intruder", "cid-stolen", namespace="team-b")
    await cluster.create(intruder)
    await cluster.create(client_secret(intruder, "attacker", owned=False))
    forged = client_secret(app, "attacker", name="app-oidc")
    forged["metadata"].update(namespace="team-b", ownerReferences=[])
    await cluster.create(forged)
    # Events of one kind arrive in order: once a later client is served, the forgeries were seen.
    later = oidcclient("later", "cid-later", namespace="team-b")
    await cluster.create(later)
    await cluster.create(client_secret(later, "s3cret-later"))
    await eventually(lambda: accepts(ready_registry, "cid-later", "s3cret-later"))

    assert ready_registry.get("cid-stolen") is None
    assert not accepts(ready_registry, "cid-app", "attacker")
    assert accepts(ready_registry, "cid-app", "s3cret-1")
    assert sorted(c.client_id for c in ready_registry.clients()) == ["cid-app", "cid-later"]


async def test_deleting_the_secret_removes_the_client(
    cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    app = oidcclient("app", "cid-app")
    secret = client_secret(app, "s3cret-1")
    await cluster.create(app)
    await cluster.create(secret)
    await eventually(lambda: ready_registry.get("cid-app") is not None)

    await cluster.delete(secret)

    await eventually(lambda: ready_registry.get("cid-app") is None, within=1.0)


async def test_deleting_the_oidcclient_removes_the_client(
    cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    app = oidcclient("app", "cid-app")
    await cluster.create(app)
    await cluster.create(client_secret(app, "s3cret-1"))
    await eventually(lambda: ready_registry.get("cid-app") is not None)

    await cluster.delete(app)

    await eventually(lambda: ready_registry.get("cid-app") is None, within=1.0)


async def test_secret_losing_the_manager_label_removes_the_client(
    cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    app = oidcclient("app", "cid-app")
    secret = client_secret(app, "s3cret-1")
    await cluster.create(app)
    await cluster.create(secret)
    await eventually(lambda: ready_registry.get("cid-app") is not None)

    await cluster.patch(secret, {"metadata": {"labels": {contract.MANAGED_BY_LABEL: None}}})

    await eventually(lambda: ready_registry.get("cid-app") is None, within=1.0)


async def test_registry_is_not_ready_until_both_kinds_are_listed(
    kmock: kmock_lib.KubernetesEmulator,
    cluster: Cluster,
    start_watcher: Callable[..., tuple[ClientRegistry, RegistryWatcher]],
) -> None:
    # The OIDCClient resource is not served yet (as before the CRD is applied): its list fails.
    registry, _ = start_watcher()
    secret_lists = kmock["list", kmock_lib.resource("v1/secrets")]
    await eventually(lambda: len(secret_lists) >= 1)
    await asyncio.sleep(0.3)
    assert not registry.ready

    cluster.declare_oidcclients()

    await eventually(lambda: registry.ready)


async def test_expired_watch_lists_again_and_resumes(
    caplog: pytest.LogCaptureFixture,
    kmock: kmock_lib.KubernetesEmulator,
    cluster: Cluster,
    start_watcher: Callable[..., tuple[ClientRegistry, RegistryWatcher]],
) -> None:
    caplog.set_level(logging.INFO, logger="kubeoidc_provider.watcher")
    cluster.declare_oidcclients()
    gone = {
        "type": "ERROR",
        "object": {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "code": 410,
            "reason": "Expired",
            "message": "too old resource version",
        },
    }
    kmock["watch", kmock_lib.resource("v1/secrets")][:1] << (gone,)
    secret_lists = kmock["list", kmock_lib.resource("v1/secrets")]
    registry, _ = start_watcher()

    await eventually(lambda: len(secret_lists) >= 2)
    assert "410 Gone" in caplog.text
    app = oidcclient("app", "cid-app")
    await cluster.create(app)
    await cluster.create(client_secret(app, "s3cret-1"))
    await eventually(lambda: accepts(registry, "cid-app", "s3cret-1"))


async def test_watcher_limited_to_namespaces_ignores_the_others(
    cluster: Cluster, start_watcher: Callable[..., tuple[ClientRegistry, RegistryWatcher]]
) -> None:
    cluster.declare_oidcclients()
    registry, _ = start_watcher(["team-a"])
    await eventually(lambda: registry.ready)

    outside = oidcclient("outside", "cid-outside", namespace="team-b")
    await cluster.create(outside)
    await cluster.create(client_secret(outside, "s3cret-b"))
    inside = oidcclient("inside", "cid-inside")
    await cluster.create(inside)
    await cluster.create(client_secret(inside, "s3cret-a"))

    await eventually(lambda: registry.get("cid-inside") is not None)
    assert registry.get("cid-outside") is None


async def test_stop_ends_open_watches_promptly(
    cluster: Cluster, start_watcher: Callable[..., tuple[ClientRegistry, RegistryWatcher]]
) -> None:
    cluster.declare_oidcclients()
    registry, watcher = start_watcher()
    await eventually(lambda: registry.ready)
    await asyncio.sleep(0.2)  # let the watches open

    started = time.monotonic()
    await asyncio.to_thread(watcher.stop)

    assert time.monotonic() - started < 2.0


# -- the signing-keys Secret ------------------------------------------------------------------------


def keys_secret(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "signing-keys",
            "namespace": "kubeoidc",
            "labels": {contract.MANAGED_BY_LABEL: contract.MANAGER, contract.SIGNING_KEYS_LABEL: "true"},
        },
        "data": {contract.SIGNING_KEYS_KEY: b64(json.dumps(document))},
    }


async def test_the_provider_signs_with_each_new_version_of_the_signing_keys_secret(
    cluster: Cluster, api_client: Any
) -> None:
    cluster.declare_oidcclients()
    first, second = generate_jwks("ES256"), generate_jwks("ES256")
    await cluster.create(keys_secret(first))
    signing = SigningKeys("https://id.example.com", KeySet.from_jwks(generate_jwks("ES256")))
    follow = FollowedSecret("kubeoidc", "signing-keys", SecretFollower(signing))
    watcher = RegistryWatcher(ClientRegistry(), None, api_client, backoff_initial=0.05, follow=follow)
    watcher.start()
    try:
        await eventually(lambda: signing.keys.signing_kid == first["keys"][0]["kid"])

        rotated = {"keys": first["keys"] + second["keys"], "signing_kid": second["keys"][0]["kid"]}
        await cluster.patch(keys_secret(rotated), {"data": keys_secret(rotated)["data"]})
        await eventually(lambda: signing.keys.signing_kid == second["keys"][0]["kid"])
        assert set(signing.keys.kids) == {first["keys"][0]["kid"], second["keys"][0]["kid"]}

        # A broken version is refused: the keys in use stay.
        await cluster.patch(keys_secret(rotated), {"data": {contract.SIGNING_KEYS_KEY: b64("{}")}})
        await asyncio.sleep(0.3)
        assert signing.keys.signing_kid == second["keys"][0]["kid"]
    finally:
        await asyncio.to_thread(watcher.stop)
