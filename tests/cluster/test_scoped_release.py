"""A second release limited to two namespaces (``watchNamespaces``), in a release namespace it does not
serve: the chart then grants Roles in the served namespaces, kopf's namespace observation at cluster
scope, and Roles for the signing-keys Secret alone. Its operator and provider run with exactly that.

The shared cluster-wide operator and provider, if running, are stopped first (two operators must not
reconcile the same objects); a later test that needs them starts them again.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

import kubeoidc_contract as contract
from support.admin import Admin, oidcclient, ready_credentials
from support.control_plane import ControlPlane
from support.live import free_port
from support.release import (
    SCOPED_NAMESPACE,
    Release,
    RoleProcess,
    eventually,
    running,
    start_provider,
)

pytestmark = pytest.mark.cluster

SERVED = ("team-a", "team-b")
NOT_SERVED = "team-c"
MACHINE_SPEC = {"grantTypes": ["client_credentials"], "scopes": ["invoices:read"]}


@pytest.fixture(scope="module")
def scoped(
    control_plane: ControlPlane, admin: Admin, release: Release, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Release, RoleProcess, RoleProcess]]:
    """The scoped release installed, its operator and provider running (and no other)."""
    for namespace in (*SERVED, NOT_SERVED):
        admin.create_namespace(namespace)
    port = free_port()
    scoped_release = Release(
        control_plane,
        tmp_path_factory.mktemp("scoped-release"),
        f"http://127.0.0.1:{port}",
        name="scoped",
        namespace=SCOPED_NAMESPACE,
        values={"watchNamespaces": list(SERVED)},
    )
    scoped_release.install()
    for process in running("provider") + running("operator"):
        process.stop()
    operator = scoped_release.operator()
    operator.start()
    try:
        provider = start_provider(scoped_release, port, admin.find_secret)
        try:
            yield scoped_release, operator, provider
        finally:
            provider.stop()
    finally:
        operator.stop()


def token(issuer: str, credentials: dict[str, str]) -> httpx2.Response:
    return httpx2.post(
        f"{issuer}/token",
        data={"grant_type": "client_credentials", "scope": "invoices:read"},
        auth=(credentials[contract.CLIENT_ID_KEY], credentials[contract.CLIENT_SECRET_KEY]),
        timeout=10,
    )


@pytest.mark.parametrize("namespace", SERVED)
def test_scoped_release_serves_clients_of_a_watched_namespace(
    admin: Admin, scoped: tuple[Release, RoleProcess, RoleProcess], namespace: str
) -> None:
    release, _, _ = scoped
    admin.create_client(namespace, oidcclient("billing", MACHINE_SPEC))
    credentials = ready_credentials(admin, namespace, "billing")

    assert credentials[contract.ISSUER_KEY] == release.issuer
    eventually(
        lambda: token(release.issuer, credentials).status_code == 200, "the scoped provider to serve it"
    )


def test_scoped_release_leaves_other_namespaces_alone(
    admin: Admin, scoped: tuple[Release, RoleProcess, RoleProcess]
) -> None:
    admin.create_client(NOT_SERVED, oidcclient("ignored", MACHINE_SPEC))
    # A client created afterwards in a served namespace is reconciled: the operator is at work.
    admin.create_client(SERVED[0], oidcclient("after-ignored", MACHINE_SPEC))
    ready_credentials(admin, SERVED[0], "after-ignored")

    assert "status" not in admin.get_client(NOT_SERVED, "ignored")
    assert admin.find_secret(NOT_SERVED, "ignored-oidc") is None


def test_scoped_operator_keeps_the_signing_keys_in_the_unserved_release_namespace(
    admin: Admin, scoped: tuple[Release, RoleProcess, RoleProcess]
) -> None:
    release, _, _ = scoped
    reference = release.provider_settings()["KUBEOIDC_PROVIDER_SIGNING_KEYS_SECRET"]
    namespace, name = reference.split("/")
    keys = admin.find_secret(namespace, name)
    published = httpx2.get(f"{release.issuer}/jwks", timeout=10).json()

    assert namespace == SCOPED_NAMESPACE not in SERVED
    assert keys is not None
    assert {key["kid"] for key in published["keys"]}


@pytest.mark.parametrize("role", ["operator", "provider"])
def test_scoped_role_was_never_forbidden_anything(
    control_plane: ControlPlane, scoped: tuple[Release, RoleProcess, RoleProcess], role: str
) -> None:
    release, operator, provider = scoped
    user = release.service_account(role)
    codes = [
        (event["verb"], event.get("requestURI"), event.get("responseStatus", {}).get("code"))
        for event in control_plane.audit_events()
        if event["user"]["username"] == user
    ]
    process = operator if role == "operator" else provider

    assert codes, f"the {role} made no request"
    assert [code for code in codes if code[2] == 403] == [], process.tail()
    assert " 403 " not in process.output()
