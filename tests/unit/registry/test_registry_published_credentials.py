"""The registry serves a client from the digests its OIDCClient's status publishes, and only those."""

from __future__ import annotations

import hashlib
import tracemalloc
from typing import Any

import kubeoidc_contract as contract
from kubeoidc_provider.registry import ClientRegistry

NOW = 1_750_000_000.0


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def published(secret: str | None = None, client_id: str = "cid-app") -> dict[str, str]:
    """``status.credentials`` for ``client_id``: the SHA-256 of ``secret``, when there is one."""
    credentials = {contract.CREDENTIALS_CLIENT_ID: client_id}
    if secret is not None:
        credentials[contract.CREDENTIALS_SECRET_HASH] = sha256(secret)
    return credentials


def oidcclient(credentials: dict[str, str] | None, **spec: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"clientID": "cid-app", "secretName": "app-oidc"}
    if credentials is not None:
        status[contract.STATUS_CREDENTIALS] = credentials
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.KIND,
        "metadata": {"name": "app", "namespace": "apps", "uid": "uid-app"},
        "spec": {"redirectURIs": ["https://app.example.com/cb"], **spec},
        "status": status,
    }


def registry_of(*objs: dict[str, Any]) -> ClientRegistry:
    registry = ClientRegistry()
    registry.replace_all(list(objs), [])
    return registry


def test_published_digest_authenticates_the_secret_and_nothing_else() -> None:
    registry = registry_of(oidcclient(published("s1")))

    client = registry.get("cid-app")
    assert client is not None
    assert client.check_secret("s1", NOW)
    assert not client.check_secret("s2", NOW)


def test_previous_digest_is_accepted_until_its_published_expiry() -> None:
    registry = registry_of(
        oidcclient(
            {
                contract.CREDENTIALS_CLIENT_ID: "cid-app",
                contract.CREDENTIALS_SECRET_HASH: sha256("new"),
                contract.CREDENTIALS_PREVIOUS_HASH: sha256("old"),
                contract.CREDENTIALS_PREVIOUS_EXPIRES: "2025-06-15T15:06:40Z",
            }
        )
    )

    client = registry.get("cid-app")
    assert client is not None
    assert client.check_secret("old", NOW - 1)
    assert not client.check_secret("old", NOW + 1)
    assert client.check_secret("new", NOW + 1)


def test_public_client_is_served_from_its_published_client_id() -> None:
    registry = registry_of(oidcclient(published(), public=True))

    assert registry.get("cid-app") is not None


def test_nothing_published_or_published_for_another_id_serves_nothing() -> None:
    assert registry_of(oidcclient(None)).get("cid-app") is None
    other = published("s", client_id="cid-other")
    assert registry_of(oidcclient(other)).get("cid-app") is None


def test_confidential_client_without_a_published_digest_is_not_served() -> None:
    assert registry_of(oidcclient(published())).get("cid-app") is None
    malformed = {contract.CREDENTIALS_CLIENT_ID: "cid-app", contract.CREDENTIALS_SECRET_HASH: "zz"}
    assert registry_of(oidcclient(malformed)).get("cid-app") is None


def test_of_two_claimants_the_one_the_operator_published_is_served() -> None:
    # The operator let the older claim keep the ID and withdrew the other's credentials.
    older = oidcclient(published("s"))
    newer = oidcclient(None)
    newer["metadata"] = {"name": "intruder", "namespace": "other", "uid": "uid-intruder"}

    client = registry_of(older, newer).get("cid-app")

    assert client is not None
    assert (client.namespace, client.name) == ("apps", "app")


def test_two_claimants_that_both_publish_are_neither_served() -> None:
    first = oidcclient(published("s"))
    second = oidcclient(published("t"))
    second["metadata"] = {"name": "twin", "namespace": "other", "uid": "uid-twin"}

    assert registry_of(first, second).get("cid-app") is None


def test_a_new_published_digest_replaces_the_old_one_at_once() -> None:
    registry = registry_of(oidcclient(published("s1")))

    registry.upsert_oidcclient(oidcclient(published("s2")))

    client = registry.get("cid-app")
    assert client is not None
    assert client.check_secret("s2", NOW)
    assert not client.check_secret("s1", NOW)


def test_a_public_client_never_accepts_a_digest_its_status_publishes() -> None:
    registry = registry_of(oidcclient(published("s"), public=True))

    client = registry.get("cid-app")
    assert client is not None
    assert client.secret_hashes == ()
    assert not client.check_secret("s", NOW)


def test_withdrawn_credentials_stop_serving_the_client() -> None:
    registry = registry_of(oidcclient(published("s")))

    registry.upsert_oidcclient(oidcclient(None))

    assert registry.get("cid-app") is None


def test_ten_thousand_clients_served_from_their_status_take_under_6_and_a_quarter_mib() -> None:
    registry = ClientRegistry()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        for i in range(10_000):
            cid = f"kubeoidc-{i:024x}"
            obj = oidcclient(
                {contract.CREDENTIALS_CLIENT_ID: cid, contract.CREDENTIALS_SECRET_HASH: f"{i:064x}"},
                displayName=f"App {i}",
            )
            obj["metadata"] = {
                "name": f"app-{i:05d}",
                "namespace": "apps",
                "uid": f"0d9e5c4e-6b1a-4f7e-9a51-{i:012d}",
            }
            obj["status"].update(clientID=cid, secretName=f"app-{i:05d}-oidc")
            registry.upsert_oidcclient(obj)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(registry) == 10_000
    client = registry.get(f"kubeoidc-{9_999:024x}")
    assert client is not None
    assert client.digests == bytes.fromhex(f"{9_999:064x}")
    # About 630 bytes each: the published digests live in the served client alone, no record of them
    # besides, and the Secret's name is the client's name and a shared suffix (7.4 MiB when each
    # registration kept a record of them and the name, 6.6 with the record gone and the name kept).
    assert used - baseline < 6.25 * 1024 * 1024, f"{(used - baseline) / 2**20:.2f} MiB"
