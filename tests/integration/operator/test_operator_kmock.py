"""The operator end to end against kmock: create, rotate, conflict, deletion, restore."""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from typing import Any

import pytest

from kubeoidc_contract import (
    CLIENT_ID_KEY,
    CLIENT_LABEL,
    CLIENT_SECRET_KEY,
    ISSUER_KEY,
    MANAGED_BY_LABEL,
    ROTATE_ANNOTATION,
)
from kubeoidc_operator.settings import OperatorSettings

pytestmark = pytest.mark.kmock

#: Overrides the harness's fast resync: what such a test shows is done by the watch handlers alone.
events_only = pytest.mark.parametrize(
    "operator_settings", [OperatorSettings(issuer="https://login.example.com", resync_interval=3600)]
)

Harness = Any


def data(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def reasons(operator: Harness) -> list[str]:
    return [event["reason"] for event in operator.posted_events()]


async def ready_client(operator: Harness, name: str = "web", **kwargs: Any) -> dict[str, str]:
    await operator.create_client(name, **kwargs)
    ready = await operator.wait_for(f"{name} to be Ready", lambda: operator.ready(name))
    assert (ready["status"], ready["reason"]) == ("True", "Reconciled")
    return data(operator.secret(f"{name}-oidc"))


@events_only
async def test_new_client_gets_a_secret_with_credentials_and_ready_status(operator: Harness) -> None:
    await operator.create_client("web")

    secret = await operator.wait_for("the Secret", lambda: operator.secret("web-oidc"))
    ready = await operator.wait_for("Ready", lambda: operator.ready("web"))

    values = data(secret)
    assert set(values) == {CLIENT_ID_KEY, CLIENT_SECRET_KEY, ISSUER_KEY}
    assert values[ISSUER_KEY] == "https://login.example.com"
    assert len(values[CLIENT_SECRET_KEY]) == 43
    assert secret["metadata"]["labels"] == {MANAGED_BY_LABEL: "kubeoidc", CLIENT_LABEL: "web"}
    assert (ready["status"], ready["reason"]) == ("True", "Reconciled")
    status = operator.client("web")["status"]
    assert status["clientID"] == values[CLIENT_ID_KEY]
    assert status["secretName"] == "web-oidc"
    # A new client's Secret gets no Event (its Ready condition says it), and kopf records nothing on it.
    assert "SecretCreated" not in reasons(operator)
    assert not [key for key in operator.client("web")["metadata"].get("annotations") or {} if "kopf" in key]
    # No finalizer: deleting the client never waits for the operator.
    assert not operator.client("web")["metadata"].get("finalizers")


async def test_steady_state_writes_nothing(operator: Harness) -> None:
    await ready_client(operator)
    await asyncio.sleep(0.5)  # Let the echoes of the first writes come and go.
    secret_writes = len(operator.writes_to("/api/v1/namespaces/apps/secrets/web-oidc"))
    status_writes = len(
        operator.writes_to("/apis/kubeoidc.io/v1alpha1/namespaces/apps/oidcclients/web/status")
    )

    await asyncio.sleep(1.5)  # Three resyncs.

    assert len(operator.writes_to("/api/v1/namespaces/apps/secrets/web-oidc")) == secret_writes == 0
    assert (
        len(operator.writes_to("/apis/kubeoidc.io/v1alpha1/namespaces/apps/oidcclients/web/status"))
        == status_writes
    )
    assert status_writes == 1


@pytest.mark.parametrize(
    "operator_settings",
    [
        OperatorSettings(issuer="https://login.example.com", resync_interval=0.5),
        OperatorSettings(issuer="https://login.example.com", resync_interval=3600),
    ],
    ids=["with-resyncs", "events-only"],
)
async def test_rotation_annotation_rotates_once_and_keeps_the_client_id(operator: Harness) -> None:
    before = await ready_client(operator)

    await operator.patch_client("web", {"metadata": {"annotations": {ROTATE_ANNOTATION: "2025-06-01"}}})
    await operator.wait_for("the rotation", lambda: "SecretRotated" in reasons(operator))
    after = data(operator.secret("web-oidc"))
    await asyncio.sleep(1.5)  # The echoes of our own writes, and resyncs where they run.

    assert after[CLIENT_SECRET_KEY] != before[CLIENT_SECRET_KEY]
    assert after[CLIENT_ID_KEY] == before[CLIENT_ID_KEY]
    assert data(operator.secret("web-oidc")) == after
    assert reasons(operator).count("SecretRotated") == 1
    assert operator.client("web")["status"]["rotation"]["lastValue"] == "2025-06-01"


async def test_unowned_secret_is_left_untouched_and_reported(operator: Harness) -> None:
    unowned = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "web-oidc", "namespace": "apps", "uid": "someone-else", "resourceVersion": "1"},
        "type": "Opaque",
        "data": {"password": base64.b64encode(b"hunter2").decode()},
    }
    await operator.create_secret(copy.deepcopy(unowned))

    await operator.create_client("web")
    ready = await operator.wait_for("Ready", lambda: operator.ready("web"))
    await asyncio.sleep(1.0)  # Give resyncs a chance to do what they must not do.

    assert (ready["status"], ready["reason"]) == ("False", "SecretConflict")
    assert "'web-oidc'" in ready["message"]
    assert operator.secret("web-oidc") == unowned
    assert operator.writes_to("/api/v1/namespaces/apps/secrets/web-oidc") == []
    assert reasons(operator).count("SecretConflict") == 1


async def test_deleted_client_leaves_its_secret_to_the_garbage_collector(
    operator: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await ready_client(operator)
    secret = operator.secret("web-oidc")
    assert secret["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "kubeoidc.io/v1alpha1",
            "kind": "OIDCClient",
            "name": "web",
            "uid": "uid-web",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]

    await operator.delete_client("web")
    await operator.wait_for("the client to be gone", lambda: operator.client("web") is None)
    await asyncio.sleep(1.0)  # Resyncs and Secret events after the deletion.

    # kmock has no garbage collector: the Secret stays, and the operator neither deletes nor recreates it.
    assert operator.secret("web-oidc") == secret
    # The operator is alive and well: the next client is reconciled.
    await ready_client(operator, "next")
    failures = [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(("kopf", "kubeoidc"))
    ]
    assert failures == []


@events_only
async def test_deleted_secret_is_recreated_with_the_same_client_id(operator: Harness) -> None:
    before = await ready_client(operator)

    await operator.delete_secret("web-oidc")
    restored = await operator.wait_for("the Secret back", lambda: operator.secret("web-oidc"))

    after = data(restored)
    assert after[CLIENT_ID_KEY] == before[CLIENT_ID_KEY]
    assert after[CLIENT_SECRET_KEY] != before[CLIENT_SECRET_KEY]  # The secret itself was lost with it.
    await operator.wait_for("the Warning", lambda: "CredentialsRegenerated" in reasons(operator))
    warning = next(e for e in operator.posted_events() if e["reason"] == "CredentialsRegenerated")
    assert warning["type"] == "Warning"


@events_only
async def test_hand_edited_secret_is_put_back(operator: Harness) -> None:
    before = await ready_client(operator)
    evil = base64.b64encode(b"https://evil.example.com").decode()

    await operator.request("PATCH", "/api/v1/namespaces/apps/secrets/web-oidc", {"data": {ISSUER_KEY: evil}})
    await operator.wait_for("the issuer restored", lambda: data(operator.secret("web-oidc")) == before)
