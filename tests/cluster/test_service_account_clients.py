"""Secretless clients on a real API server: a ServiceAccount's token (TokenRequest, as a pod's projected
token is made) authenticates an OIDCClient at the provider, which runs as its own process under the
chart's RBAC and verifies the token offline against the cluster's issuer keys, learned in the background.

The module's last test rotates the cluster's signing key: kube-apiserver restarts with a new key, a fault
for everyone connected (marked ``faults``): while it comes up, the roles' requests can be refused before
its RBAC caches fill. So it runs after ``test_rbac``, which checks that the roles were never refused.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest
from joserfc import jws, jwt
from joserfc.jwk import RSAKey

import kubeoidc_contract as contract
from kubeoidc_provider.assertions import JWT_BEARER
from support.admin import Admin, oidcclient, ready_credentials
from support.control_plane import ControlPlane
from support.release import Release, RoleProcess, eventually

# Its last test restarts the API server with a new signing key: the shared operator and provider meet a
# few 403s while the new server's authorizer catches up, so test_rbac's audit checks run before it.
pytestmark = [pytest.mark.cluster, pytest.mark.apiserver_restart]

ACCOUNT = "billing"
OTHER_ACCOUNT = "reports"
SCOPES = ["invoices:read", "invoices:write"]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def _provider_running(provider: RoleProcess) -> None:
    """Every test here needs the provider (and the operator)."""


@pytest.fixture(scope="module")
def other_namespace(admin: Admin, namespace: str) -> str:
    name = f"{namespace}-other"
    admin.create_namespace(name)
    return name


@pytest.fixture(scope="module")
def client_id(
    control_plane: ControlPlane,
    admin: Admin,
    namespace: str,
    other_namespace: str,
    shared_operator: RoleProcess,
) -> str:
    """The client ``billing``, which the ServiceAccount ``billing`` of its namespace authenticates."""
    shared_operator.ensure_running()  # a module before this one may have stopped it
    for ns, name in ((namespace, ACCOUNT), (namespace, OTHER_ACCOUNT), (other_namespace, ACCOUNT)):
        control_plane.kubectl("create", "serviceaccount", name, "--namespace", ns)
    spec = {
        "grantTypes": ["client_credentials"],
        "scopes": SCOPES,
        "tokenEndpointAuthMethod": contract.SERVICE_ACCOUNT_AUTH_METHOD,
        "serviceAccounts": [ACCOUNT],
    }
    admin.create_client(namespace, oidcclient("billing", spec))
    credentials = ready_credentials(admin, namespace, "billing")
    # No secret exists anywhere for this client: its Secret holds the client ID and the issuer only.
    assert set(credentials) == {contract.CLIENT_ID_KEY, contract.ISSUER_KEY}
    return credentials[contract.CLIENT_ID_KEY]


def create_token(plane: ControlPlane, namespace: str, account: str, audience: str) -> str:
    """A token of the ServiceAccount from the TokenRequest API, as the kubelet gets a pod's."""
    return plane.kubectl(
        "create", "token", account, "--namespace", namespace, f"--audience={audience}"
    ).strip()


def client_credentials(issuer: str, client_id: str, assertion: str) -> httpx2.Response:
    return httpx2.post(
        f"{issuer}/token",
        data={
            "grant_type": "client_credentials",
            "scope": " ".join(SCOPES),
            "client_id": client_id,
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
        },
        timeout=10,
    )


def served(issuer: str, client_id: str, assertion: str) -> httpx2.Response | None:
    """The token response once the provider's watch serves the client (until then: None)."""
    response = client_credentials(issuer, client_id, assertion)
    return response if response.status_code == 200 else None


def assert_invalid_client(response: httpx2.Response, description: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"error": "invalid_client", "error_description": description}


def payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return claims


def header(token: str) -> dict[str, Any]:
    return dict(jws.extract_compact(token.encode()).protected)


def resign(token: str, key_pem: bytes, **changes: Any) -> str:
    """The token's header and claims, with ``changes``, signed by the RSA key ``key_pem``."""
    return jwt.encode(header(token), {**payload(token), **changes}, RSAKey.import_key(key_pem))


# Accepted --------------------------------------------------------------------------------------------


def test_a_service_account_token_gets_a_client_credentials_token_with_the_clients_scopes(
    control_plane: ControlPlane, release: Release, namespace: str, client_id: str
) -> None:
    token = create_token(control_plane, namespace, ACCOUNT, release.issuer)

    response = eventually(lambda: served(release.issuer, client_id, token), "the provider to serve billing")

    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == " ".join(SCOPES)
    access = payload(body["access_token"])
    assert access["client_id"] == client_id
    assert access["sub"] == f"client:{client_id}"
    assert access["iss"] == release.issuer


def test_the_token_endpoint_as_audience_is_accepted_too(
    control_plane: ControlPlane, release: Release, namespace: str, client_id: str
) -> None:
    token = create_token(control_plane, namespace, ACCOUNT, f"{release.issuer}/token")

    assert eventually(lambda: served(release.issuer, client_id, token), "the provider to serve billing")


# Refused with invalid_client ---------------------------------------------------------------------------

NOT_ITS_ACCOUNT = "The client assertion's ServiceAccount is not one of this client's."


def test_another_service_accounts_token_is_refused(
    control_plane: ControlPlane, release: Release, namespace: str, client_id: str
) -> None:
    token = create_token(control_plane, namespace, OTHER_ACCOUNT, release.issuer)

    assert_invalid_client(client_credentials(release.issuer, client_id, token), NOT_ITS_ACCOUNT)


def test_the_right_service_account_name_in_another_namespace_is_refused(
    control_plane: ControlPlane, release: Release, other_namespace: str, client_id: str
) -> None:
    token = create_token(control_plane, other_namespace, ACCOUNT, release.issuer)

    assert_invalid_client(client_credentials(release.issuer, client_id, token), NOT_ITS_ACCOUNT)


def test_a_token_for_another_audience_is_refused(
    control_plane: ControlPlane, release: Release, namespace: str, client_id: str
) -> None:
    token = create_token(control_plane, namespace, ACCOUNT, "https://vault.example.com")

    assert_invalid_client(
        client_credentials(release.issuer, client_id, token),
        "The client assertion's audience must be this provider's issuer or its token endpoint.",
    )


def test_an_expired_token_of_the_cluster_is_refused(
    control_plane: ControlPlane, release: Release, namespace: str, client_id: str
) -> None:
    # TokenRequest makes tokens of at least 10 minutes: this one is the cluster's own token, re-signed
    # with the cluster's own key, as it would have been issued an hour ago.
    token = create_token(control_plane, namespace, ACCOUNT, release.issuer)
    an_hour_ago = int(time.time()) - 3600
    expired = resign(
        token,
        control_plane.service_account_key.key.read_bytes(),
        iat=an_hour_ago,
        nbf=an_hour_ago,
        exp=an_hour_ago + 600,
    )

    assert_invalid_client(
        client_credentials(release.issuer, client_id, expired), "The client assertion has expired."
    )


def test_a_token_signed_by_a_key_that_is_not_the_clusters_is_refused(
    control_plane: ControlPlane, release: Release, namespace: str, client_id: str
) -> None:
    token = create_token(control_plane, namespace, ACCOUNT, release.issuer)
    impostor = RSAKey.generate_key(2048).as_pem(private=True)

    forged = resign(token, impostor, jti=str(uuid.uuid4()))

    assert_invalid_client(
        client_credentials(release.issuer, client_id, forged),
        "The client assertion's signature does not verify.",
    )


def test_a_token_of_a_deleted_and_re_created_service_account_is_refused(
    control_plane: ControlPlane, admin: Admin, release: Release, namespace: str
) -> None:
    control_plane.kubectl("create", "serviceaccount", "ledger", "--namespace", namespace)
    spec = {
        "grantTypes": ["client_credentials"],
        "scopes": SCOPES,
        "tokenEndpointAuthMethod": contract.SERVICE_ACCOUNT_AUTH_METHOD,
        "serviceAccounts": ["ledger"],
    }
    admin.create_client(namespace, oidcclient("ledger", spec))
    client_id = ready_credentials(admin, namespace, "ledger")[contract.CLIENT_ID_KEY]
    old_token = create_token(control_plane, namespace, "ledger", release.issuer)
    eventually(lambda: served(release.issuer, client_id, old_token), "the provider to serve ledger")

    control_plane.kubectl("delete", "serviceaccount", "ledger", "--namespace", namespace)
    control_plane.kubectl("create", "serviceaccount", "ledger", "--namespace", namespace)
    new_token = create_token(control_plane, namespace, "ledger", release.issuer)

    # Once the provider's watch has seen the new ServiceAccount, its tokens work again...
    eventually(lambda: served(release.issuer, client_id, new_token), "the provider to see the new uid")
    # ...and those of the one before it, still validly signed, never do.
    assert_invalid_client(
        client_credentials(release.issuer, client_id, old_token),
        "The client assertion belongs to an earlier ServiceAccount of that name (it was re-created).",
    )


# What the provider read for it -----------------------------------------------------------------------


def test_the_provider_learned_the_issuer_and_uids_with_the_charts_rbac_and_only_read(
    control_plane: ControlPlane, release: Release, client_id: str
) -> None:
    provider = release.service_account("provider")
    requests = {
        (event["verb"], (event.get("objectRef") or {}).get("resource") or event["requestURI"].split("?")[0])
        : event.get("responseStatus", {}).get("code", 0)
        for event in control_plane.audit_events()
        if event["user"]["username"] == provider
    }  # fmt: skip

    assert requests[("get", "/.well-known/openid-configuration")] == 200
    assert requests[("get", "/openid/v1/jwks")] == 200
    assert requests[("list", "serviceaccounts")] == 200
    assert {verb for verb, _ in requests} <= {"get", "list", "watch"}


# The examples, as documented -------------------------------------------------------------------------


def test_the_examples_get_a_token_with_the_pods_projected_token(
    control_plane: ControlPlane, admin: Admin, release: Release, namespace: str, tmp_path: Path
) -> None:
    control_plane.kubectl("create", "serviceaccount", "invoices", "--namespace", namespace)
    manifest = EXAMPLES / "service-account-client.yaml"
    control_plane.kubectl("apply", "--namespace", namespace, "-f", str(manifest))
    # The Deployment is what a cluster accepts (server-side dry run: there are no nodes to run it here).
    control_plane.kubectl(
        "apply", "--dry-run=server", "--namespace", namespace, "-f", str(EXAMPLES / "service-account-app")
    )
    credentials = ready_credentials(admin, namespace, "invoices")
    token_file = tmp_path / "token"  # what the kubelet projects into the pod
    token_file.write_text(create_token(control_plane, namespace, "invoices", release.issuer))
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "OIDC_TOKEN_FILE": str(token_file),
        "OIDC_CLIENT_ID": credentials["OIDC_CLIENT_ID"],
        "OIDC_ISSUER": credentials["OIDC_ISSUER"],
    }

    def run_example() -> str | None:
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / "service-account-app" / "get_token.py")],
            env=environment,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return result.stdout if result.returncode == 0 else None

    output = eventually(run_example, "the example to get a token")

    assert output.startswith("got an access token of ")
    assert set(credentials) == {"client_id", "issuer", "OIDC_CLIENT_ID", "OIDC_ISSUER"}


# The cluster's keys (last: it restarts the API server) -----------------------------------------------


@pytest.mark.faults
def test_after_the_cluster_rotates_its_signing_key_new_tokens_are_accepted_without_a_provider_restart(
    control_plane: ControlPlane,
    release: Release,
    namespace: str,
    client_id: str,
    provider: RoleProcess,
) -> None:
    old_token = create_token(control_plane, namespace, ACCOUNT, release.issuer)
    eventually(lambda: served(release.issuer, client_id, old_token), "the provider to serve billing")
    process = provider.component.process
    assert process is not None
    pid = process.pid

    control_plane.rotate_service_account_key()
    new_token = create_token(control_plane, namespace, ACCOUNT, release.issuer)
    assert header(new_token)["kid"] != header(old_token)["kid"]

    response = eventually(
        lambda: served(release.issuer, client_id, new_token), "the provider to accept the new key"
    )

    assert response.json()["scope"] == " ".join(SCOPES)
    assert provider.component.process is not None
    assert provider.component.process.pid == pid, "the provider was not restarted"
    # The previous key still verifies (the cluster kept it): tokens it signed stay valid until they expire.
    assert served(release.issuer, client_id, old_token) is not None
