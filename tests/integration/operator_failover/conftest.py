"""Operator replicas as separate processes (``kubeoidc operator``) against one kmock API server.

kmock serves the API on the test's event loop; each replica is a real ``python -m kubeoidc.cli operator``
with its own kubeconfig file and its own bearer token, so every request kmock records says which
replica sent it. The replicas peer through a ``ClusterKopfPeering`` object that the test creates, as the
chart would.

kmock generates no uid or resourceVersion, never answers 409 on a stale write, collects no garbage,
replays every object at each watch start, ignores label selectors and does not isolate status: objects
carry the uid and resourceVersion the test gives them, and the tests assert only what a real API server
would show too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock as kmocklib
import pytest

from kubeoidc_operator.peering import PEERING_GROUP, PEERING_KIND, PEERING_PLURAL, PEERING_VERSION
from support.failover import PEERING, PEERINGS, Cluster, Replica, free_port
from support.kmock_api import declare_resources


@pytest.fixture
async def cluster(kmock: Any) -> Cluster:
    declare_resources(kmock)
    # As crds/kopf-peering.yaml declares it: cluster-scoped, status without a subresource.
    kmock.resources[PEERINGS] = kmocklib.ResourceInfo(
        kind=PEERING_KIND,
        singular=PEERING_KIND.lower(),
        namespaced=False,
        verbs={"get", "list", "watch", "create", "patch", "delete"},
    )
    cluster = Cluster(kmock)
    await cluster.request(
        "POST",
        f"/apis/{PEERING_GROUP}/{PEERING_VERSION}/{PEERING_PLURAL}",
        {
            "apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
            "kind": PEERING_KIND,
            "metadata": {"name": PEERING, "uid": "uid-peering", "resourceVersion": "1"},
        },
    )
    return cluster


@pytest.fixture
async def replicas(kmock: Any, tmp_path: Path) -> AsyncIterator[Callable[[str], Replica]]:
    """Makes replicas; whatever still runs at the end is stopped. Their logs are printed (pytest shows
    them when a test fails)."""
    made: list[Replica] = []
    url = str(kmock.url).rstrip("/")

    def make(name: str) -> Replica:
        environment = {"KUBEOIDC_OPERATOR_LIVENESS_PORT": str(free_port())}
        replica = Replica(name, url, tmp_path, environment)
        made.append(replica)
        return replica

    yield make
    # Stopped while kmock still serves: a replica that stops cleanly withdraws its peering record.
    await asyncio.gather(*(replica.stop() for replica in made))
    for replica in made:
        print(replica.log_tail())
