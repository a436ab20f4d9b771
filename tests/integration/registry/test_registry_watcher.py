"""The registry watcher against the kmock API server: clients appear, rotate and vanish with their objects.

The provider reads no tenant's Secret: a client's credentials reach it as the digests the operator
publishes in the OIDCClient's status, and a labelled Secret, owned or not, registers nothing.

kmock serves the API on a local port from the test's event loop; the watcher's threads talk to it with
the real Kubernetes client. The test therefore never blocks the loop: it polls with ``asyncio.sleep``
and stops the watcher in a worker thread. Objects are created through the API (so that watches see
them) with the uid and status a real API server and the operator would have given them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import kmock as kmock_lib
import pytest

import kubeoidc_contract as contract
from kubeoidc_contract.cluster_access import ClusterAccess
from kubeoidc_provider.keys import KeySet, generate_jwks
from kubeoidc_provider.kube_api import KubeApi
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.signing import SecretFollower, SigningKeys
from kubeoidc_provider.streams import FollowedSecret
from kubeoidc_provider.watcher import RegistryWatcher
from support.kmock_api import CLIENTS, declare_oidcclients, load_builtins

pytestmark = pytest.mark.kmock

OIDCCLIENTS = f"/apis/{contract.GROUP}/{contract.VERSION}/namespaces/{{namespace}}/{contract.PLURAL}"
SECRETS = "/api/v1/namespaces/{namespace}/secrets"
TIMEOUT = 5.0


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def published(client_id: str, secret: str) -> dict[str, str]:
    """``status.credentials`` as the operator publishes it for this secret."""
    return {
        contract.CREDENTIALS_CLIENT_ID: client_id,
        contract.CREDENTIALS_SECRET_HASH: hashlib.sha256(secret.encode()).hexdigest(),
    }


def oidcclient(
    name: str, client_id: str, *, namespace: str = "team-a", secret: str | None = None
) -> dict[str, Any]:
    """An OIDCClient as the operator leaves it: with its credentials published when ``secret`` is given."""
    status: dict[str, Any] = {"clientID": client_id, "secretName": f"{name}-oidc"}
    if secret is not None:
        status[contract.STATUS_CREDENTIALS] = published(client_id, secret)
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.KIND,
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {"displayName": name.title(), "redirectURIs": [f"https://{name}.example.com/callback"]},
        "status": status,
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
def api_client(kmock: kmock_lib.KubernetesEmulator) -> Iterator[KubeApi]:
    client = KubeApi(ClusterAccess(str(kmock.url).rstrip("/"), None, None))
    yield client
    client.close()


@pytest.fixture
async def start_watcher(
    cluster: Cluster, api_client: KubeApi
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


async def test_client_appears_when_its_oidcclient_publishes_its_credentials(
    cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    await cluster.create(oidcclient("app", "cid-app", secret="s3cret-1"))

    await eventually(lambda: accepts(ready_registry, "cid-app", "s3cret-1"))
    client = ready_registry.get("cid-app")
    assert client is not None
    assert client.display_name == "App"
    assert client.redirect_uris == ("https://app.example.com/callback",)


async def test_clients_that_exist_before_the_start_are_served_after_the_first_list(
    cluster: Cluster, start_watcher: Callable[..., tuple[ClientRegistry, RegistryWatcher]]
) -> None:
    cluster.declare_oidcclients()
    await cluster.create(oidcclient("app", "cid-app", secret="s3cret-1"))

    registry, _ = start_watcher()

    await eventually(lambda: registry.ready)
    assert accepts(registry, "cid-app", "s3cret-1")


async def test_rotated_secret_is_refused_as_soon_as_the_published_digest_changes(
    cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    app = oidcclient("app", "cid-app", secret="s3cret-1")
    await cluster.create(app)
    await eventually(lambda: accepts(ready_registry, "cid-app", "s3cret-1"))

    await cluster.patch(app, {"status": {contract.STATUS_CREDENTIALS: published("cid-app", "s3cret-2")}})

    await eventually(lambda: not accepts(ready_registry, "cid-app", "s3cret-1"), within=1.0)
    assert accepts(ready_registry, "cid-app", "s3cret-2")


async def test_labelled_secrets_owned_or_not_register_nothing(
    cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    await cluster.create(oidcclient("app", "cid-app", secret="s3cret-1"))
    await eventually(lambda: accepts(ready_registry, "cid-app", "s3cret-1"))
    # In another namespace, an OIDCClient whose status claims a client ID but publishes nothing, with
    # a labelled Secret it controls, and a labelled Secret copying the first client's ID.
    intruder = oidcclient("intruder", "cid-stolen", namespace="team-b")
    await cluster.create(intruder)
    await cluster.create(client_secret(intruder, "attacker"))
    forged = client_secret(oidcclient("app", "cid-app"), "attacker", name="app-oidc")
    forged["metadata"].update(namespace="team-b", ownerReferences=[])
    await cluster.create(forged)
    # Events of one kind arrive in order: once a later client is served, the intruder was seen.
    await cluster.create(oidcclient("later", "cid-later", namespace="team-b", secret="s3cret-later"))
    await eventually(lambda: accepts(ready_registry, "cid-later", "s3cret-later"))

    assert ready_registry.get("cid-stolen") is None
    assert not accepts(ready_registry, "cid-app", "attacker")
    assert accepts(ready_registry, "cid-app", "s3cret-1")
    assert sorted(c.client_id for c in ready_registry.clients()) == ["cid-app", "cid-later"]


async def test_watcher_never_lists_or_watches_a_secret(
    kmock: kmock_lib.KubernetesEmulator, cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    app = oidcclient("app", "cid-app", secret="s3cret-1")
    await cluster.create(app)
    await cluster.create(client_secret(app, "s3cret-1"))
    await eventually(lambda: accepts(ready_registry, "cid-app", "s3cret-1"))

    assert len(kmock["list", kmock_lib.resource("v1/secrets")]) == 0
    assert len(kmock["watch", kmock_lib.resource("v1/secrets")]) == 0


async def test_withdrawn_credentials_remove_the_client(
    cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    app = oidcclient("app", "cid-app", secret="s3cret-1")
    await cluster.create(app)
    await eventually(lambda: ready_registry.get("cid-app") is not None)

    # What the operator writes when the client stops being Ready (a Secret conflict, an invalid spec).
    await cluster.patch(app, {"status": {contract.STATUS_CREDENTIALS: None}})

    await eventually(lambda: ready_registry.get("cid-app") is None, within=1.0)


async def test_deleting_the_oidcclient_removes_the_client(
    cluster: Cluster, ready_registry: ClientRegistry
) -> None:
    app = oidcclient("app", "cid-app", secret="s3cret-1")
    await cluster.create(app)
    await eventually(lambda: ready_registry.get("cid-app") is not None)

    await cluster.delete(app)

    await eventually(lambda: ready_registry.get("cid-app") is None, within=1.0)


async def test_registry_is_not_ready_until_the_oidcclients_are_listed(
    kmock: kmock_lib.KubernetesEmulator,
    cluster: Cluster,
    start_watcher: Callable[..., tuple[ClientRegistry, RegistryWatcher]],
) -> None:
    # The OIDCClient resource is not served yet (as before the CRD is applied): its list fails.
    registry, _ = start_watcher()
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
    kmock["watch", CLIENTS][:1] << (gone,)
    client_lists = kmock["list", CLIENTS]
    registry, _ = start_watcher()

    await eventually(lambda: len(client_lists) >= 2)
    assert "410 Gone" in caplog.text
    await cluster.create(oidcclient("app", "cid-app", secret="s3cret-1"))
    await eventually(lambda: accepts(registry, "cid-app", "s3cret-1"))


async def test_watcher_limited_to_namespaces_ignores_the_others(
    cluster: Cluster, start_watcher: Callable[..., tuple[ClientRegistry, RegistryWatcher]]
) -> None:
    cluster.declare_oidcclients()
    registry, _ = start_watcher(["team-a"])
    await eventually(lambda: registry.ready)

    await cluster.create(oidcclient("outside", "cid-outside", namespace="team-b", secret="s3cret-b"))
    await cluster.create(oidcclient("inside", "cid-inside", secret="s3cret-a"))

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
    cluster: Cluster, api_client: KubeApi
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
