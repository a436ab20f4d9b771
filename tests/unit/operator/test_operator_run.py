"""run() starts kopf with the settings it was given: scope, liveness port, peering, quiet posting."""

from __future__ import annotations

import gc
import logging
from typing import Any

import kopf
import pytest
import uvloop

from kubeoidc_contract.cluster_access import ClusterAccess
from kubeoidc_operator import run as run_module
from kubeoidc_operator.peering import PeeringGate
from kubeoidc_operator.settings import OperatorSettings, load_settings

PEERED: dict[str, Any] = {
    "issuer": "https://login.example.com",
    "peering": "kubeoidc",
    "peering_lifetime": 10,
}


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    calls: dict[str, Any] = {}
    monkeypatch.setattr(run_module, "from_environment", lambda: ClusterAccess("http://127.0.0.1:9"))
    monkeypatch.setattr(kopf, "configure", lambda **kwargs: None)
    monkeypatch.setattr(kopf, "run", lambda **kwargs: calls.update(kwargs))
    monkeypatch.setattr(run_module, "peering_reader", lambda api, name: lambda: {"metadata": {"name": name}})
    return calls


def test_run_watches_the_whole_cluster_without_namespaces(started: dict[str, Any]) -> None:
    run_module.run(OperatorSettings(issuer="https://login.example.com"))
    assert started["clusterwide"] is True
    assert started["namespaces"] == []
    assert started["standalone"] is True
    assert started["peering_name"] is None
    assert started["settings"].peering.standalone is True
    assert started["liveness_endpoint"] == "http://0.0.0.0:8081/healthz"
    assert isinstance(started["registry"], kopf.OperatorRegistry)
    assert started["registry"] is not kopf.get_default_registry()


def test_run_gives_kopf_a_uvloop_event_loop_as_kopfs_own_command_line_does(started: dict[str, Any]) -> None:
    run_module.run(OperatorSettings(issuer="https://login.example.com"))
    assert isinstance(started["loop"], uvloop.Loop)


def test_run_collects_the_youngest_generation_less_often_than_cpythons_default(
    started: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    thresholds: list[tuple[int, ...]] = []
    monkeypatch.setattr(gc, "set_threshold", lambda *values: thresholds.append(values))
    run_module.run(OperatorSettings(issuer="https://login.example.com"))
    assert thresholds == [(run_module.YOUNG_COLLECTION_THRESHOLD, 10, 10)]
    assert run_module.YOUNG_COLLECTION_THRESHOLD > 700


def test_run_watches_only_the_namespaces_given(started: dict[str, Any]) -> None:
    run_module.run(load_settings(issuer="https://login.example.com", namespaces="a,b", liveness_port=9000))
    assert started["clusterwide"] is False
    assert started["namespaces"] == ["a", "b"]
    assert started["liveness_endpoint"] == "http://0.0.0.0:9000/healthz"


def test_kopf_settings_post_events_and_keep_progress_out_of_status() -> None:
    settings = run_module.kopf_settings(OperatorSettings(issuer="https://login.example.com"))
    assert settings.posting.enabled is True
    assert settings.posting.level == logging.WARNING
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert list(settings.watching.label_selectors.values()) == ["app.kubernetes.io/managed-by=kubeoidc"]


def startup_handlers(registry: kopf.OperatorRegistry) -> dict[str, Any]:
    # kopf has no public listing of a registry's handlers; its own tests read this one.
    return {handler.id: handler.fn for handler in registry._activities.get_all_handlers()}


def test_a_peering_name_makes_a_mandatory_cluster_peering(started: dict[str, Any]) -> None:
    run_module.run(load_settings(**PEERED, priority=7, namespaces="a"))
    assert started["standalone"] is False
    assert started["peering_name"] == "kubeoidc"
    assert started["priority"] == 7
    assert isinstance(started["identity"], str)
    peering = started["settings"].peering
    assert (peering.name, peering.priority, peering.lifetime) == ("kubeoidc", 7, 10)
    assert (peering.mandatory, peering.standalone, peering.clusterwide) == (True, False, True)


def test_replicas_without_a_priority_draw_distinct_negative_ones(started: dict[str, Any]) -> None:
    drawn = set()
    for _ in range(5):
        run_module.run(load_settings(**PEERED))
        drawn.add(started["priority"])
    assert len(drawn) == 5
    assert all(-(2**31) <= priority < 0 for priority in drawn)


def test_at_startup_a_namespaced_replica_still_peers_cluster_wide(started: dict[str, Any]) -> None:
    run_module.run(load_settings(**PEERED, namespaces="a"))
    settings = kopf.OperatorSettings()
    settings.peering.clusterwide = False  # What kopf.run sets for a namespaced operator.
    [cluster_peering] = [fn for id_, fn in startup_handlers(started["registry"]).items() if "peering" in id_]
    cluster_peering(settings=settings)
    assert settings.peering.clusterwide is True


def test_a_standalone_operator_has_no_peering_startup(started: dict[str, Any]) -> None:
    run_module.run(OperatorSettings(issuer="https://login.example.com"))
    assert not [id_ for id_ in startup_handlers(started["registry"]) if "peering" in id_]


def test_a_failing_peering_read_at_startup_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("API down")

    registry = kopf.OperatorRegistry()
    run_module.use_cluster_peering(registry, PeeringGate(broken, name="kubeoidc", identity="me", priority=1))
    [cluster_peering] = startup_handlers(registry).values()
    cluster_peering(settings=kopf.OperatorSettings())
    assert "Could not read the peering object 'kubeoidc'" in caplog.text


def test_kopf_keeps_no_diff_base_since_no_handler_reads_a_diff() -> None:
    settings = run_module.kopf_settings(OperatorSettings(issuer="https://login.example.com"))
    body = kopf.Body({"metadata": {"name": "web", "annotations": {}}, "spec": {"displayName": "Web"}})
    storage = settings.persistence.diffbase_storage

    assert storage.fetch(body=body) is None
    assert storage.build(body=body) == {}
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=kopf.BodyEssence(spec={"displayName": "Web"}))
    assert not patch  # nothing written on the object
