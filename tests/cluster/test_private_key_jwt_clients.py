"""Clients with their own key (``private_key_jwt``) on a real API server: an OIDCClient with an inline
JWKS, created through kube-apiserver, reconciled by the operator under the chart's RBAC into a Secret with
no secret in it, and served by the provider (its own process, reading no Secret), which takes the
client's signed assertion at the token endpoint.
"""

from __future__ import annotations

import httpx2
import pytest

import kubeoidc_contract as contract
from kubeoidc_provider.assertions import JWT_BEARER
from support.admin import Admin, oidcclient, ready_credentials
from support.client_keys import ClientKey
from support.release import Release, RoleProcess, eventually

pytestmark = pytest.mark.cluster


@pytest.fixture(autouse=True)
def _provider_running(provider: RoleProcess) -> None:
    """Every test here needs the provider (and the operator)."""


def client_credentials(issuer: str, client_id: str, assertion: str) -> httpx2.Response:
    return httpx2.post(
        f"{issuer}/token",
        data={
            "grant_type": "client_credentials",
            "scope": "invoices:read",
            "client_id": client_id,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
        },
        timeout=10,
    )


def test_a_client_with_an_inline_jwks_gets_a_token_for_its_signed_assertion_and_no_secret_exists(
    admin: Admin, release: Release, namespace: str, shared_operator: RoleProcess
) -> None:
    shared_operator.ensure_running()  # a module before this one may have stopped it
    key = ClientKey("ES256")
    spec = {
        "grantTypes": ["client_credentials"],
        "scopes": ["invoices:read"],
        "tokenEndpointAuthMethod": contract.PRIVATE_KEY_JWT_AUTH_METHOD,
        "jwks": {"keys": [key.public_jwk()]},
    }
    admin.create_client(namespace, oidcclient("ledger", spec))
    credentials = ready_credentials(admin, namespace, "ledger")
    client_id = credentials[contract.CLIENT_ID_KEY]

    def served() -> httpx2.Response | None:
        response = client_credentials(release.issuer, client_id, key.assertion(client_id, release.issuer))
        return response if response.status_code == 200 else None

    token = eventually(served, "the provider to serve ledger").json()
    replay_source = key.assertion(client_id, release.issuer)
    first = client_credentials(release.issuer, client_id, replay_source)
    replayed = client_credentials(release.issuer, client_id, replay_source)

    assert set(credentials) == {contract.CLIENT_ID_KEY, contract.ISSUER_KEY}
    assert token["scope"] == "invoices:read"
    assert first.status_code == 200, first.text
    assert (replayed.status_code, replayed.json()["error"]) == (401, "invalid_client")
