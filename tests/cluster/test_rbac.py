"""What the API server's audit log says about the two roles over the session: the chart's RBAC gave each
what it asked for, the provider only ever read, and it read no Secret outside its own namespace while
serving the clients of the others. The tier's conftest runs this module after every other one, except
the modules marked ``apiserver_restart``: right after kube-apiserver restarts, the shared processes meet
a few 403s while its authorizer catches up, which says nothing about the chart's RBAC.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx2
import kubernetes.client as k8s
import pytest

import kubeoidc_contract as contract
from support.admin import Admin, oidcclient, ready_credentials
from support.control_plane import ControlPlane, requested
from support.release import Release, RoleProcess, eventually

pytestmark = pytest.mark.cluster

READS = {"get", "list", "watch"}


def requests_of(control_plane: ControlPlane, user: str) -> list[tuple[str, str, str, int]]:
    """(verb, resource, namespace, code) of every request the user made."""
    return [
        (
            event["verb"],
            requested(event),
            ref.get("namespace", ""),
            event.get("responseStatus", {}).get("code", 0),
        )
        for event in control_plane.audit_events()
        if event["user"]["username"] == user
        for ref in [event.get("objectRef") or {}]
    ]


@pytest.mark.parametrize("role", ["operator", "provider"])
def test_role_was_never_forbidden_anything(
    control_plane: ControlPlane, release: Release, operator: RoleProcess, provider: RoleProcess, role: str
) -> None:
    requests = requests_of(control_plane, release.service_account(role))

    assert requests, f"the {role} made no request"
    forbidden = Counter(request for request in requests if request[3] == 403)
    assert not forbidden


def test_provider_only_reads(control_plane: ControlPlane, release: Release, provider: RoleProcess) -> None:
    verbs = {verb for verb, *_ in requests_of(control_plane, release.service_account("provider"))}

    assert verbs <= READS


def test_neither_log_shows_a_403(operator: RoleProcess, provider: RoleProcess) -> None:
    for process in (operator, provider):
        output = process.output()
        assert " 403 " not in output, process.tail()
        assert "Forbidden" not in output, process.tail()


def provider_may(admin: Admin, release: Release, verb: str, namespace: str) -> bool:
    """The API server's answer to: may the provider's ServiceAccount <verb> Secrets in <namespace>?"""
    review: Any = k8s.AuthorizationV1Api(admin.api_client).create_subject_access_review(
        k8s.V1SubjectAccessReview.model_validate(
            {
                "spec": {
                    "user": release.service_account("provider"),
                    "groups": ["system:serviceaccounts", f"system:serviceaccounts:{release.namespace}"],
                    "resourceAttributes": {"verb": verb, "resource": "secrets", "namespace": namespace},
                }
            }
        ),
        _preload_content=False,
    )
    return bool(json.loads(review.data)["status"].get("allowed"))


def test_provider_serves_a_tenant_client_without_any_right_on_the_tenants_secrets(
    control_plane: ControlPlane, admin: Admin, namespace: str, release: Release, provider: RoleProcess
) -> None:
    admin.create_client(
        namespace,
        oidcclient("m2m", {"grantTypes": ["client_credentials"], "scopes": ["reports:read"]}),
    )
    credentials = ready_credentials(admin, namespace, "m2m")

    def token() -> int:
        return httpx2.post(
            f"{release.issuer}/token",
            data={"grant_type": "client_credentials", "scope": "reports:read"},
            auth=(credentials[contract.CLIENT_ID_KEY], credentials[contract.CLIENT_SECRET_KEY]),
            timeout=10,
        ).status_code

    eventually(lambda: token() == 200, "the provider to serve the tenant's client")
    for verb in ("get", "list", "watch"):
        assert not provider_may(admin, release, verb, namespace), verb
        assert not provider_may(admin, release, verb, "kube-system"), verb
    read_secrets = {
        ns
        for _, resource, ns, _ in requests_of(control_plane, release.service_account("provider"))
        if resource == "secrets"
    }
    assert read_secrets <= {release.namespace}
