"""The provider on a real API server, as its own ServiceAccount with the chart's read-only RBAC, beside
the operator: clients created through the API are served (a real relying party signs a user in), a
rotated secret is refused as soon as the Secret changes (or accepted until the grace period ends), a
deleted client is no longer served, and a Secret that carries the operator's labels without its
ownerReference serves nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

import kubeoidc_contract as contract
from support.admin import Admin, condition, oidcclient, ready_credentials
from support.provider import PASSWORD
from support.release import Release, RoleProcess, eventually

pytestmark = pytest.mark.cluster

MACHINE_SPEC = {
    "displayName": "Billing sync",
    "grantTypes": ["client_credentials"],
    "scopes": ["invoices:read"],
}
WEB_SCOPES = ["openid", "profile", "email", "groups", "offline_access"]
ALICE_SUB = "7b0c2f6e-alice"


def client_credentials(issuer: str, client_id: str, secret: str) -> httpx2.Response:
    return httpx2.post(
        f"{issuer}/token",
        data={"grant_type": "client_credentials", "scope": "invoices:read"},
        auth=(client_id, secret),
        timeout=10,
    )


def refused_as_invalid_client(response: httpx2.Response) -> bool:
    return response.status_code == 401 and response.json().get("error") == "invalid_client"


@pytest.fixture(autouse=True)
def _provider_running(provider: RoleProcess) -> None:
    """Every test here needs the provider (and so the operator)."""


@pytest.mark.node
@pytest.mark.browser
def test_provider_serves_a_client_created_through_the_api_to_a_real_relying_party(
    admin: Admin,
    namespace: str,
    release: Release,
    relying_party: Callable[..., dict[str, Any]],
    chromium: str,
) -> None:
    spec = {
        "displayName": "Team wiki",
        "description": "Where the team writes things down.",
        "redirectURIs": ["https://wiki.example.test/callback"],
        "postLogoutRedirectURIs": ["https://wiki.example.test/signed-out"],
        "grantTypes": ["authorization_code", "refresh_token"],
        "scopes": WEB_SCOPES,
    }
    admin.create_client(namespace, oidcclient("wiki", spec))
    credentials = ready_credentials(admin, namespace, "wiki")
    client_id, secret = credentials[contract.CLIENT_ID_KEY], credentials[contract.CLIENT_SECRET_KEY]
    # Served once the provider's watch has both the OIDCClient and its Secret: its own token endpoint
    # then tells a wrong grant (400) from an unknown client (401).
    eventually(
        lambda: client_credentials(release.issuer, client_id, secret).status_code == 400,
        "the provider to serve the new client",
    )

    result = relying_party(
        "code-flow",
        {
            "issuer": credentials[contract.ISSUER_KEY],
            "clientId": client_id,
            "clientSecret": secret,
            "redirectUri": spec["redirectURIs"][0],
            "postLogoutRedirectUri": spec["postLogoutRedirectURIs"][0],
            "scope": " ".join(WEB_SCOPES),
            "username": "alice",
            "password": PASSWORD,
            "chromium": chromium,
        },
    )

    assert result["discovery"]["issuer"] == release.issuer
    assert result["pages"]["login"]["clientName"] == "Team wiki"
    assert result["pages"]["consent"]["clientDescription"] == spec["description"]
    claims = result["token"]["idToken"]
    assert (claims["iss"], claims["aud"], claims["sub"]) == (release.issuer, client_id, ALICE_SUB)
    assert result["userinfo"]["email"] == "alice@example.com"
    assert result["refresh"]["rotated"] is True
    assert result["introspection"]["access"]["active"] is True
    assert result["logout"]["landed"] == spec["postLogoutRedirectURIs"][0]
    assert result["codeReplay"]["ok"] is False


def test_provider_refuses_the_old_secret_after_a_rotation(
    admin: Admin, namespace: str, release: Release
) -> None:
    admin.create_client(namespace, oidcclient("billing", MACHINE_SPEC))
    old = ready_credentials(admin, namespace, "billing")
    client_id = old[contract.CLIENT_ID_KEY]
    eventually(
        lambda: (
            client_credentials(release.issuer, client_id, old[contract.CLIENT_SECRET_KEY]).status_code == 200
        ),
        "the provider to serve the machine client",
    )

    admin.annotate_client(namespace, "billing", contract.ROTATE_ANNOTATION, "1")
    new = eventually(
        lambda: (
            (found := ready_credentials(admin, namespace, "billing"))[contract.CLIENT_SECRET_KEY]
            != old[contract.CLIENT_SECRET_KEY]
            and found
        ),
        "the operator to rotate the secret",
    )
    # The provider follows the Secret's watch event; no restart, no call to the API on the request path.
    eventually(
        lambda: refused_as_invalid_client(
            client_credentials(release.issuer, client_id, old[contract.CLIENT_SECRET_KEY])
        ),
        "the provider to refuse the old secret",
    )
    granted = client_credentials(release.issuer, client_id, new[contract.CLIENT_SECRET_KEY])

    assert granted.status_code == 200, granted.text
    assert granted.json()["token_type"].lower() == "bearer"
    assert new[contract.CLIENT_ID_KEY] == client_id


def test_provider_refuses_a_forged_secret_that_has_the_labels_but_not_the_owner_reference(
    admin: Admin, namespace: str, release: Release
) -> None:
    # A Secret dressed as the operator's, written by someone who may write Secrets but not OIDCClients,
    # and an OIDCClient whose status names it, as an earlier run of the operator would have left it.
    client_id, forged_secret = "forged-client-0001", secrets.token_urlsafe(32)
    admin.create_secret(
        namespace,
        {
            "metadata": {
                "name": "forged-oidc",
                "labels": {contract.MANAGED_BY_LABEL: contract.MANAGER, contract.CLIENT_LABEL: "forged"},
            },
            "stringData": {
                contract.CLIENT_ID_KEY: client_id,
                contract.CLIENT_SECRET_KEY: forged_secret,
                contract.ISSUER_KEY: release.issuer,
            },
        },
    )
    admin.create_client(namespace, oidcclient("forged", {**MACHINE_SPEC, "clientID": client_id}))
    client = eventually(
        lambda: (
            (found := admin.find_client(namespace, "forged"))
            and condition(found).get("reason") == "SecretConflict"
            and found
        ),
        "the operator to report SecretConflict",
    )
    admin.patch_client_status(namespace, "forged", {"clientID": client_id, "secretName": "forged-oidc"})
    # A barrier: the provider's OIDCClient watch delivers in order, so once a client created after the
    # status change is served, the provider has seen that change too.
    admin.create_client(namespace, oidcclient("barrier", MACHINE_SPEC))
    barrier = ready_credentials(admin, namespace, "barrier")
    eventually(
        lambda: (
            client_credentials(
                release.issuer, barrier[contract.CLIENT_ID_KEY], barrier[contract.CLIENT_SECRET_KEY]
            ).status_code
            == 200
        ),
        "the provider to serve the client created after the forgery",
    )

    refused = client_credentials(release.issuer, client_id, forged_secret)

    assert refused_as_invalid_client(refused), refused.text
    # The ownerReference is all that was missing: with it, the same Secret is served.
    admin.patch_secret(
        namespace,
        "forged-oidc",
        {
            "metadata": {
                "ownerReferences": [
                    {
                        "apiVersion": contract.API_VERSION,
                        "kind": contract.KIND,
                        "name": "forged",
                        "uid": client["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ]
            }
        },
    )
    eventually(
        lambda: client_credentials(release.issuer, client_id, forged_secret).status_code == 200,
        "the provider to serve the Secret once the OIDCClient controls it",
    )


def test_provider_got_no_403_from_the_api_server(provider: RoleProcess) -> None:
    assert " 403 " not in provider.output()
    assert "Forbidden" not in provider.output()


def test_provider_accepts_the_old_secret_during_the_grace_period(
    admin: Admin, namespace: str, release: Release
) -> None:
    admin.create_client(
        namespace, oidcclient("graceful", {**MACHINE_SPEC, "secretRotation": {"gracePeriod": "1h"}})
    )
    old = ready_credentials(admin, namespace, "graceful")
    client_id = old[contract.CLIENT_ID_KEY]

    admin.annotate_client(namespace, "graceful", contract.ROTATE_ANNOTATION, "1")
    new = eventually(
        lambda: (
            (found := ready_credentials(admin, namespace, "graceful"))[contract.CLIENT_SECRET_KEY]
            != old[contract.CLIENT_SECRET_KEY]
            and found
        ),
        "the operator to rotate the secret",
    )
    eventually(
        lambda: (
            client_credentials(release.issuer, client_id, new[contract.CLIENT_SECRET_KEY]).status_code == 200
        ),
        "the provider to accept the new secret",
    )
    during_grace = client_credentials(release.issuer, client_id, old[contract.CLIENT_SECRET_KEY])

    assert during_grace.status_code == 200, during_grace.text


def test_provider_stops_serving_a_deleted_client(admin: Admin, namespace: str, release: Release) -> None:
    admin.create_client(namespace, oidcclient("retired", MACHINE_SPEC))
    credentials = ready_credentials(admin, namespace, "retired")
    client_id, secret = credentials[contract.CLIENT_ID_KEY], credentials[contract.CLIENT_SECRET_KEY]
    eventually(
        lambda: client_credentials(release.issuer, client_id, secret).status_code == 200,
        "the provider to serve the client",
    )

    admin.delete_client(namespace, "retired")

    eventually(
        lambda: refused_as_invalid_client(client_credentials(release.issuer, client_id, secret)),
        "the provider to stop serving the deleted client",
    )
