"""Every example manifest reconciles to Ready=True with the Secret its comments promise."""

from __future__ import annotations

import datetime
import pathlib
from typing import Any

import pytest
import yaml

from kubeoidc_contract import CLIENT_ID_KEY, CLIENT_SECRET_KEY, ISSUER_KEY, KIND, PRIVATE_KEY_JWT_AUTH_METHOD
from kubeoidc_operator import reconcile, rotation

EXAMPLES = pathlib.Path(__file__).resolve().parents[3] / "examples"
DOCUMENTS = [
    pytest.param(document, id=f"{path.name}:{document['metadata']['name']}")
    for path in sorted(EXAMPLES.glob("*.yaml"))
    for document in yaml.safe_load_all(path.read_text())
    if isinstance(document, dict) and document.get("kind") == KIND
]


def test_there_are_examples() -> None:
    assert len(DOCUMENTS) >= 3


@pytest.mark.parametrize("document", DOCUMENTS)
def test_example_becomes_ready_with_its_secret(document: dict[str, Any]) -> None:
    client = {**document, "metadata": {**document["metadata"], "namespace": "example", "uid": "uid-1"}}
    plan = reconcile.plan(
        client,
        current=None,
        issuer="https://login.example.com",
        now=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
        credentials=rotation.RandomCredentials(),
    )
    assert plan.action == "create"
    assert plan.secret is not None
    ready = next(c for c in plan.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Reconciled"), ready["message"]
    spec = document["spec"]
    data = plan.secret["data"]
    assert plan.secret["metadata"]["name"] == spec.get("secretName", f"{document['metadata']['name']}-oidc")
    assert {CLIENT_ID_KEY, ISSUER_KEY} <= set(data)
    # A public client has no secret, nor has one that its ServiceAccounts' tokens or its own key authenticate.
    own_key = spec.get("tokenEndpointAuthMethod") == PRIVATE_KEY_JWT_AUTH_METHOD
    secretless = spec.get("public", False) or bool(spec.get("serviceAccounts")) or own_key
    assert (CLIENT_SECRET_KEY in data) is (not secretless)
    for extra in spec.get("secretTemplate", {}).get("keys", {}).values():
        assert extra in data
