"""Operator failover: two replicas in separate processes, one active; the active one is killed mid-reconcile.

Replica A (priority 100) and replica B (priority 50) peer through one ClusterKopfPeering with 3-second
keep-alive records and a half-second resync. A reconciles a first batch of clients while B stands by
without a single request for OIDCClients or Secrets (kopf pauses B's handlers; the resync loop's gate
pauses B's resync). Then a second batch arrives, and kmock holds back its answers to A's Secret
creations: the Secrets are stored, but A's handlers are stuck before writing status, the worst moment
to die. A is killed with SIGKILL there. B takes over once A's record expires and finishes: every client
Ready with its Secret, the credentials A wrote never changed (read back from the Secrets where the status
was never written), no Secret deleted.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import kmock as kmocklib
import pytest

from kubeoidc_contract import CLIENT_ID_KEY, CLIENT_SECRET_KEY
from support.failover import CLIENTS, PEERING, PEERINGS, SECRETS, Cluster, Replica

pytestmark = pytest.mark.kmock

LIFETIME = 3


def settings(priority: int) -> dict[str, str]:
    return {
        "issuer": "https://login.example.com",
        "peering": PEERING,
        "priority": str(priority),
        "peering_lifetime": str(LIFETIME),
        "resync_interval": "0.5",
    }


def credentials(cluster: Cluster) -> dict[str, tuple[str, str]]:
    """Each Secret's client ID and client secret, by Secret name."""
    found = {}
    for name, secret in cluster.objects(SECRETS).items():
        data = {key: base64.b64decode(value).decode() for key, value in secret.get("data", {}).items()}
        found[name] = (data[CLIENT_ID_KEY], data[CLIENT_SECRET_KEY])
    return found


def ready(cluster: Cluster, name: str) -> bool:
    client = cluster.objects(CLIENTS).get(name) or {}
    conditions = (client.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def start_pair(cluster: Cluster, a: Replica, b: Replica) -> None:
    """A first, until it is active; then B, until it has joined the peering."""
    a.start(**settings(priority=100))
    await cluster.wait_for("A to watch OIDCClients", lambda: cluster.watching(a, CLIENTS))
    b.start(**settings(priority=50))
    await cluster.wait_for("B to join the peering", lambda: len(cluster.peers()) == 2)
    await asyncio.sleep(1.5)  # Three of B's resync periods, and a keep-alive from each replica.


async def test_standby_takes_over_from_a_killed_replica_without_changing_credentials(
    cluster: Cluster, replicas: Any, kmock: Any
) -> None:
    a, b = replicas("a"), replicas("b")
    await start_pair(cluster, a, b)
    first = [f"app-{n:02d}" for n in range(5)]
    for name in first:
        await cluster.create_client(name)
    await cluster.wait_for("the first batch Ready", lambda: all(ready(cluster, name) for name in first))

    # A reconciles. B, paused, has not sent one request about OIDCClients or Secrets: its resync loop
    # runs (it reads the peering object each time) but skips its turns.
    assert cluster.requests(by=a, resource=SECRETS)
    assert cluster.requests(by=b, resource=CLIENTS) == []
    assert cluster.requests(by=b, resource=SECRETS) == []
    gate_reads = [r for r in cluster.requests(by=b, resource=PEERINGS) if r.action == kmocklib.action.FETCH]
    assert len(gate_reads) >= 2

    # kmock stores A's new Secrets but holds its answers: A's handlers stop before writing status.
    release = asyncio.Event()

    async def hold() -> int:
        await release.wait()
        return 503

    held = (
        kmock[kmocklib.method.POST, SECRETS, kmocklib.headers({"Authorization": f"Bearer {a.token}"})] << hold
    )
    second = [f"app-{n:02d}" for n in range(5, 20)]
    for name in second:
        await cluster.create_client(name)
    await cluster.wait_for("A to be stuck in two reconciles", lambda: len(list(held)) >= 2)

    await a.kill()
    killed = time.monotonic()
    release.set()
    await asyncio.sleep(0.2)  # Whatever A sent before dying has landed.
    before = credentials(cluster)
    stuck = [name for name in second if f"{name}-oidc" in before]
    assert stuck
    assert not any(ready(cluster, name) for name in stuck)  # Secrets written, status not.

    await cluster.wait_for("B to take over", lambda: cluster.watching(b, CLIENTS))
    # Not before A's last keep-alive record expired (kopf renews it every second at this lifetime).
    assert time.monotonic() - killed > LIFETIME - 1.5
    everyone = first + second
    await cluster.wait_for("B to finish every client", lambda: all(ready(cluster, n) for n in everyone))

    after = credentials(cluster)
    assert set(after) == {f"{name}-oidc" for name in everyone}
    assert {name: after[name] for name in before} == before
    for name in everyone:
        status = cluster.objects(CLIENTS)[name]["status"]
        assert status["clientID"] == after[f"{name}-oidc"][0]
        regenerated = [c for c in status["conditions"] if c["type"] == "CredentialsRegenerated"]
        assert all(c["status"] == "False" for c in regenerated), regenerated
    assert [r for r in cluster.requests(resource=SECRETS) if r.method == kmocklib.method.DELETE] == []
    # B dropped A's expired record and is the only peer left.
    assert [record["priority"] for record in cluster.peers().values()] == [50]
