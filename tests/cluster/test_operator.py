"""The operator on a real API server, as its own ServiceAccount with the chart's RBAC: the Secret it
owns, status through the status subresource, rotation once per value, conflicts, repairs, garbage
collection, stale writes (409) and restarts.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubeoidc import contract
from support.admin import Admin, condition, decoded, oidcclient
from support.release import Release, RoleProcess, eventually

pytestmark = pytest.mark.cluster

WEB_SPEC = {
    "displayName": "Team wiki",
    "redirectURIs": ["https://wiki.example.test/callback"],
    "grantTypes": ["authorization_code", "refresh_token"],
}


def ready_client(admin: Admin, namespace: str, name: str) -> dict[str, Any]:
    """The OIDCClient once the operator reports it Ready for its current generation."""

    def check() -> dict[str, Any] | None:
        found = admin.find_client(namespace, name)
        status = (found or {}).get("status") or {}
        if (
            found
            and condition(found).get("status") == "True"
            and status.get("observedGeneration") == found["metadata"]["generation"]
        ):
            return found
        return None

    result: dict[str, Any] = eventually(check, f"OIDCClient {namespace}/{name} to be Ready")
    return result


def create_ready(
    admin: Admin, namespace: str, name: str, spec: dict[str, Any] | None = None, **kw: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create an OIDCClient and return it, Ready, with its Secret."""
    admin.create_client(namespace, oidcclient(name, spec or WEB_SPEC, **kw))
    client = ready_client(admin, namespace, name)
    secret = admin.find_secret(namespace, client["status"]["secretName"])
    assert secret is not None
    return client, secret


def test_operator_writes_a_secret_owned_by_its_client(
    admin: Admin, namespace: str, operator: RoleProcess, release: Release
) -> None:
    client, secret = create_ready(admin, namespace, "wiki")

    assert secret["metadata"]["ownerReferences"] == [
        {
            "apiVersion": contract.API_VERSION,
            "kind": contract.KIND,
            "name": "wiki",
            "uid": client["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert secret["metadata"]["labels"] == {
        contract.MANAGED_BY_LABEL: contract.MANAGER,
        contract.CLIENT_LABEL: "wiki",
    }
    data = decoded(secret)
    assert data[contract.CLIENT_ID_KEY] == client["status"]["clientID"]
    assert data[contract.ISSUER_KEY] == release.issuer
    assert len(data[contract.CLIENT_SECRET_KEY]) >= 43
