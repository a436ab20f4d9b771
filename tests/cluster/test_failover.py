"""Two operator replicas of one release (``operator.replicaCount: 2``) on a real API server: they peer
through the chart's ClusterKopfPeering with the chart's RBAC, one works, and when it is killed
(SIGKILL: no clean hand-over) the other takes over once the keep-alive record expires.

The shared cluster-wide operator, if running, is stopped first (two unpeered operators must not
reconcile the same objects); a later test that needs it starts it again.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

import kubeoidc_contract as contract
from support.admin import Admin, decoded, oidcclient, ready_credentials
from support.control_plane import ControlPlane
from support.live import free_port
from support.release import FAILOVER_NAMESPACE, Release, RoleProcess, running

pytestmark = [pytest.mark.cluster, pytest.mark.faults]

#: Seconds a keep-alive record holds: the least the chart allows, so the take-over comes soon.
LIFETIME = 3
WEB_SPEC = {"redirectURIs": ["https://app.example.test/callback"]}


@pytest.fixture(scope="module")
def replicas(
    control_plane: ControlPlane, admin: Admin, release: Release, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Release, RoleProcess, RoleProcess]]:
    """The release with two operator replicas installed; "first" outranks "second"; both running."""
    failover = Release(
        control_plane,
        tmp_path_factory.mktemp("failover-release"),
        f"http://127.0.0.1:{free_port()}",
        name="failover",
        namespace=FAILOVER_NAMESPACE,
        values={"operator": {"replicaCount": 2, "peering": {"lifetime": LIFETIME}}},
    )
    failover.install()
    for process in running("provider") + running("operator"):
        process.stop()
    first = failover.operator("first", priority="-1")
    second = failover.operator("second", priority="-2")
    try:
        first.start()
        second.start()
        yield failover, first, second
    finally:
        first.stop()
        second.stop()


def test_the_standby_takes_over_when_the_active_operator_is_killed(
    admin: Admin, namespace: str, replicas: tuple[Release, RoleProcess, RoleProcess]
) -> None:
    _, first, second = replicas
    admin.create_client(namespace, oidcclient("before", WEB_SPEC))
    before = ready_credentials(admin, namespace, "before")
    assert f"Created Secret {namespace}/before-oidc" in first.output()
    assert f"Created Secret {namespace}/before-oidc" not in second.output()

    assert first.component.process is not None
    first.component.process.send_signal(signal.SIGKILL)
    first.component.process.wait(timeout=10)
    admin.create_client(namespace, oidcclient("after", WEB_SPEC))

    after = ready_credentials(admin, namespace, "after")
    assert f"Created Secret {namespace}/after-oidc" in second.output()
    assert after[contract.CLIENT_ID_KEY] != before[contract.CLIENT_ID_KEY]
    still = admin.find_secret(namespace, "before-oidc")
    assert still is not None
    assert decoded(still) == before


def test_replicas_were_never_forbidden_anything(
    control_plane: ControlPlane, replicas: tuple[Release, RoleProcess, RoleProcess]
) -> None:
    release, _, second = replicas
    user = release.service_account("operator")
    codes = [
        (event["verb"], event.get("requestURI"), event.get("responseStatus", {}).get("code"))
        for event in control_plane.audit_events()
        if event["user"]["username"] == user
    ]

    assert any("clusterkopfpeerings" in (uri or "") for _, uri, _ in codes)
    assert [code for code in codes if code[2] == 403] == [], second.tail()
