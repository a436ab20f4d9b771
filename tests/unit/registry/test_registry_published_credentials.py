"""The registry serves a client from the digests its OIDCClient's status publishes, and only those."""

from __future__ import annotations

import hashlib
from typing import Any

import kubeoidc_contract as contract
from kubeoidc_provider.registry import ClientRegistry

NOW = 1_750_000_000.0


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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
    registry = registry_of(
        oidcclient(
            {contract.CREDENTIALS_CLIENT_ID: "cid-app", contract.CREDENTIALS_SECRET_HASH: sha256("s1")}
        )
    )

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
    registry = registry_of(oidcclient({contract.CREDENTIALS_CLIENT_ID: "cid-app"}, public=True))

    assert registry.get("cid-app") is not None


def test_nothing_published_or_published_for_another_id_serves_nothing() -> None:
    assert registry_of(oidcclient(None)).get("cid-app") is None
    other = {contract.CREDENTIALS_CLIENT_ID: "cid-other", contract.CREDENTIALS_SECRET_HASH: sha256("s")}
    assert registry_of(oidcclient(other)).get("cid-app") is None


def test_confidential_client_without_a_published_digest_is_not_served() -> None:
    assert registry_of(oidcclient({contract.CREDENTIALS_CLIENT_ID: "cid-app"})).get("cid-app") is None
    malformed = {contract.CREDENTIALS_CLIENT_ID: "cid-app", contract.CREDENTIALS_SECRET_HASH: "zz"}
    assert registry_of(oidcclient(malformed)).get("cid-app") is None


def test_of_two_claimants_the_one_the_operator_published_is_served() -> None:
    # The operator let the older claim keep the ID and withdrew the other's credentials.
    older = oidcclient(
        {contract.CREDENTIALS_CLIENT_ID: "cid-app", contract.CREDENTIALS_SECRET_HASH: sha256("s")}
    )
    newer = oidcclient(None)
    newer["metadata"] = {"name": "intruder", "namespace": "other", "uid": "uid-intruder"}

    client = registry_of(older, newer).get("cid-app")

    assert client is not None
    assert (client.namespace, client.name) == ("apps", "app")


def test_two_claimants_that_both_publish_are_neither_served() -> None:
    first = oidcclient(
        {contract.CREDENTIALS_CLIENT_ID: "cid-app", contract.CREDENTIALS_SECRET_HASH: sha256("s")}
    )
    second = oidcclient(
        {contract.CREDENTIALS_CLIENT_ID: "cid-app", contract.CREDENTIALS_SECRET_HASH: sha256("t")}
    )
    second["metadata"] = {"name": "twin", "namespace": "other", "uid": "uid-twin"}

    assert registry_of(first, second).get("cid-app") is None
