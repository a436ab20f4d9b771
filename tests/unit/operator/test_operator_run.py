"""run() starts kopf with the settings it was given: scope, liveness port, no peering, quiet posting."""

from __future__ import annotations

import logging
from typing import Any

import kopf
import pytest

from kubeoidc_operator import run as run_module
from kubeoidc_operator.settings import OperatorSettings


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    calls: dict[str, Any] = {}
    monkeypatch.setattr(run_module.KubeApi, "from_environment", classmethod(lambda cls: object()))
    monkeypatch.setattr(kopf, "configure", lambda **kwargs: None)
    monkeypatch.setattr(kopf, "run", lambda **kwargs: calls.update(kwargs))
    return calls


def test_run_watches_the_whole_cluster_without_namespaces(started: dict[str, Any]) -> None:
    run_module.run(OperatorSettings(issuer="https://login.example.com"))
    assert started["clusterwide"] is True
    assert started["namespaces"] == []
    assert started["standalone"] is True
    assert started["liveness_endpoint"] == "http://0.0.0.0:8081/healthz"
    assert isinstance(started["registry"], kopf.OperatorRegistry)
    assert started["registry"] is not kopf.get_default_registry()


def test_run_watches_only_the_namespaces_given(started: dict[str, Any]) -> None:
    run_module.run(OperatorSettings(issuer="https://login.example.com", namespaces="a,b", liveness_port=9000))
    assert started["clusterwide"] is False
    assert started["namespaces"] == ["a", "b"]
    assert started["liveness_endpoint"] == "http://0.0.0.0:9000/healthz"


def test_kopf_settings_post_events_and_keep_progress_out_of_status() -> None:
    settings = run_module.kopf_settings(OperatorSettings(issuer="https://login.example.com"))
    assert settings.posting.enabled is True
    assert settings.posting.level == logging.WARNING
    assert isinstance(settings.persistence.progress_storage, kopf.AnnotationsProgressStorage)
    assert list(settings.watching.label_selectors.values()) == ["app.kubernetes.io/managed-by=kubeoidc"]
