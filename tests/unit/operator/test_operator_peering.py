"""A replica is active by kopf's peering rule, a standby replica's resync skips its turns, the CRD fits."""

from __future__ import annotations

import asyncio
import datetime
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeoidc_operator.controller import resync_forever
from kubeoidc_operator.peering import (
    PEERING_GROUP,
    PEERING_KIND,
    PEERING_PLURAL,
    PEERING_VERSION,
    PeeringGate,
    is_active,
    new_identity,
    random_priority,
)

NOW = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


def record(priority: int, *, seen_ago: float = 0, lifetime: int = 60) -> dict[str, Any]:
    """A keep-alive record as kopf writes it."""
    lastseen = NOW - datetime.timedelta(seconds=seen_ago)
    return {"priority": priority, "lifetime": lifetime, "lastseen": lastseen.isoformat()}


def active(status: dict[str, Any], priority: int = 10) -> bool:
    return is_active(status, identity="me", priority=priority, now=NOW)


def test_a_replica_alone_is_active() -> None:
    assert active({})
    assert active({"me": record(10)})


def test_a_live_replica_of_higher_priority_makes_this_one_stand_by() -> None:
    assert not active({"me": record(10), "other": record(11, seen_ago=59)})


def test_a_live_replica_of_the_same_priority_pauses_both() -> None:
    assert not active({"me": record(10), "other": record(10)})


def test_a_replica_of_lower_priority_changes_nothing() -> None:
    assert active({"me": record(10), "other": record(-3)})


def test_an_expired_record_is_dead() -> None:
    assert active({"other": record(99, seen_ago=3, lifetime=3)})
    assert not active({"other": record(99, seen_ago=2.9, lifetime=3)})


def test_records_kopf_would_accept_are_read_as_kopf_reads_them() -> None:
    # No lastseen: alive for a whole lifetime; no lifetime: 60 seconds; no priority: 0.
    assert not active({"other": {"priority": 20}})
    assert not active({"other": {"lastseen": (NOW - datetime.timedelta(seconds=59)).isoformat()}}, 0)
    naive = (NOW - datetime.timedelta(seconds=5)).replace(tzinfo=None).isoformat()
    assert not active({"other": {"priority": 20, "lifetime": 10, "lastseen": naive}})


def test_what_is_not_a_record_is_ignored() -> None:
    assert active({"other": "gone", "odd": {"priority": "high"}, "none": None})


def test_identities_and_priorities_differ_per_start() -> None:
    assert len({new_identity() for _ in range(20)}) == 20
    priorities = [random_priority() for _ in range(20)]
    assert len(set(priorities)) == 20
    assert all(-(2**31) <= priority <= -1 for priority in priorities)


def gate(peering: dict[str, Any] | None, priority: int = 10) -> PeeringGate:
    return PeeringGate(lambda: peering, name="kubeoidc", identity="me", priority=priority, clock=lambda: NOW)


def test_the_gate_reads_the_peering_status() -> None:
    assert gate({"status": {"me": record(10)}})()
    assert not gate({"status": {"other": record(50)}})()
    assert gate({"metadata": {"name": "kubeoidc"}})()  # No record yet.


def test_a_missing_peering_object_means_standby_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    missing = gate(None)
    with caplog.at_level(logging.INFO, logger="kubeoidc_operator.peering"):
        assert not missing()
        assert not missing()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ClusterKopfPeering 'kubeoidc' does not exist" in warnings[0].getMessage()


class CountingReconciler:
    def __init__(self) -> None:
        self.passes = 0

    def reconcile_all(self) -> list[Any]:
        self.passes += 1
        return []


async def run_for(reconciler: CountingReconciler, seconds: float, **kwargs: Any) -> None:
    task = asyncio.create_task(resync_forever(reconciler, 0.01, **kwargs))  # type: ignore[arg-type]
    await asyncio.sleep(seconds)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_standby_replica_skips_every_resync() -> None:
    reconciler, asked = CountingReconciler(), []

    def standby() -> bool:
        asked.append(True)
        return False

    await run_for(reconciler, 0.1, active=standby)
    assert len(asked) > 1
    assert reconciler.passes == 0


async def test_an_active_replica_resyncs() -> None:
    reconciler = CountingReconciler()
    await run_for(reconciler, 0.1, active=lambda: True)
    assert reconciler.passes > 0


async def test_a_failing_gate_is_retried_at_the_next_turn() -> None:
    reconciler, calls = CountingReconciler(), []

    def flaky() -> bool:
        calls.append(True)
        if len(calls) == 1:
            raise RuntimeError("API down")
        return True

    await run_for(reconciler, 0.1, active=flaky)
    assert reconciler.passes > 0


def test_the_peering_crd_serves_the_resource_kopf_peers_through() -> None:
    crd = yaml.safe_load((Path(__file__).parents[3] / "crds" / "kopf-peering.yaml").read_text())
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{PEERING_PLURAL}.{PEERING_GROUP}"
    assert (spec["group"], spec["scope"]) == (PEERING_GROUP, "Cluster")
    assert (spec["names"]["kind"], spec["names"]["plural"]) == (PEERING_KIND, PEERING_PLURAL)
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (PEERING_VERSION, True, True)
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status == status | {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
