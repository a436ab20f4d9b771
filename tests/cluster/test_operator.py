"""The operator on a real API server, as its own ServiceAccount with the chart's RBAC: the Secret it
owns (its ``blockOwnerDeletion`` passes the owner-references admission plugin), status through the
status subresource, rotation once per value, conflicts, repairs, garbage collection by the controller
manager, stale writes (409) retried, and a restart that changes no credential.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

import kubeoidc_contract as contract
from support.admin import Admin, condition, decoded, oidcclient
from support.control_plane import ControlPlane
from support.release import Release, RoleProcess, eventually

pytestmark = pytest.mark.cluster

WEB_SPEC = {
    "displayName": "Team wiki",
    "redirectURIs": ["https://wiki.example.test/callback"],
    "grantTypes": ["authorization_code", "refresh_token"],
}
#: What kopf logs when a handler raises kopf.TemporaryError (the operator's answer to a 409).
RETRIED = "retrying with the objects read again"
#: The prefix of the annotations kopf would write on an object it records state on.
KOPF_ANNOTATIONS = "kopf.zalando.org/"


def observed(admin: Admin, namespace: str, name: str, generation: int | None = None) -> dict[str, Any]:
    """The OIDCClient once the operator has reconciled its current (or the given) generation."""

    def check() -> dict[str, Any] | None:
        found = admin.find_client(namespace, name)
        if not found:
            return None
        status = found.get("status") or {}
        wanted = generation or found["metadata"]["generation"]
        if status.get("observedGeneration") == wanted and condition(found):
            return found
        return None

    result: dict[str, Any] = eventually(check, f"the operator to reconcile OIDCClient {namespace}/{name}")
    return result


def create_ready(
    admin: Admin, namespace: str, name: str, spec: dict[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create an OIDCClient; return it, Ready, and its Secret."""
    admin.create_client(namespace, oidcclient(name, spec or WEB_SPEC))
    client = observed(admin, namespace, name)
    assert condition(client)["status"] == "True", condition(client)
    secret = admin.find_secret(namespace, client["status"]["secretName"])
    assert secret is not None
    return client, secret


def posted(admin: Admin, namespace: str, name: str, reason: str, count: int = 1) -> bool:
    """Whether ``count`` Events of that reason are about the object, waiting for them: kopf posts
    Events from a queue, after the status that reports the same change."""
    eventually(
        lambda: [event["reason"] for event in admin.events(namespace, name)].count(reason) >= count,
        f"{count} {reason} Event(s) about {namespace}/{name}",
    )
    return [event["reason"] for event in admin.events(namespace, name)].count(reason) == count


@pytest.fixture(autouse=True)
def _operator_running(operator: RoleProcess) -> None:
    """Every test here needs the operator."""


def test_operator_writes_a_secret_controlled_by_its_client(
    admin: Admin, namespace: str, release: Release
) -> None:
    client, secret = create_ready(admin, namespace, "wiki")

    assert secret["metadata"]["ownerReferences"] == [
        {
            "apiVersion": contract.API_VERSION,
            "kind": contract.KIND,
            "name": "wiki",
            "uid": client["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert secret["metadata"]["labels"] == {
        contract.MANAGED_BY_LABEL: contract.MANAGER,
        contract.CLIENT_LABEL: "wiki",
    }
    data = decoded(secret)
    assert data[contract.CLIENT_ID_KEY] == client["status"]["clientID"]
    assert data[contract.ISSUER_KEY] == release.issuer
    assert len(data[contract.CLIENT_SECRET_KEY]) >= 43
    # Its Ready condition says it: no Event, one write less per new client.
    assert "SecretCreated" not in [event["reason"] for event in admin.events(namespace, "wiki")]


def test_kubectl_get_shows_the_client_id_and_why_it_is_ready(
    admin: Admin, namespace: str, control_plane: ControlPlane
) -> None:
    client, _ = create_ready(admin, namespace, "listed")

    table = control_plane.kubectl("get", contract.SHORT_NAME, "listed", "--namespace", namespace)

    header, row = (line.split() for line in table.strip().splitlines())
    assert header == ["NAME", "CLIENT", "ID", "READY", "REASON", "AGE"]
    assert row[:4] == ["listed", client["status"]["clientID"], "True", "Reconciled"]


def test_operator_writes_status_only_through_the_status_subresource(admin: Admin, namespace: str) -> None:
    create_ready(admin, namespace, "status-only")
    admin.patch_client(namespace, "status-only", {"spec": {"displayName": "Status, only"}})
    client = observed(admin, namespace, "status-only", generation=2)

    # Every field of status was last written through /status; the main resource never carried it.
    writers = [
        (entry.get("subresource", ""), "f:status" in (entry.get("fieldsV1") or {}))
        for entry in client["metadata"]["managedFields"]
    ]
    assert ("status", True) in writers
    assert ("", True) not in writers
    # Status writes do not move the generation: only the one spec change did.
    assert client["metadata"]["generation"] == 2
    assert condition(client)["observedGeneration"] == 2


def test_rotation_happens_once_per_annotation_value(admin: Admin, namespace: str) -> None:
    client, secret = create_ready(admin, namespace, "rotating")
    first = decoded(secret)

    def rotate(value: str) -> dict[str, str]:
        admin.annotate_client(namespace, "rotating", contract.ROTATE_ANNOTATION, value)
        eventually(
            lambda: (
                ((admin.get_client(namespace, "rotating").get("status") or {}).get("rotation") or {}).get(
                    "lastValue"
                )
                == value
            ),
            f"the operator to honour rotation value {value!r}",
        )
        found = admin.find_secret(namespace, client["status"]["secretName"])
        assert found is not None
        return decoded(found)

    second = rotate("2026-12-01")
    # The same value again, and a spec change that makes the operator reconcile: no second rotation.
    admin.annotate_client(namespace, "rotating", contract.ROTATE_ANNOTATION, "2026-12-01")
    admin.patch_client(namespace, "rotating", {"spec": {"displayName": "Rotating"}})
    observed(admin, namespace, "rotating", generation=2)
    again = admin.find_secret(namespace, client["status"]["secretName"])
    assert again is not None
    third = rotate("2026-12-02")

    assert second[contract.CLIENT_SECRET_KEY] != first[contract.CLIENT_SECRET_KEY]
    assert decoded(again) == second
    assert third[contract.CLIENT_SECRET_KEY] not in (
        first[contract.CLIENT_SECRET_KEY],
        second[contract.CLIENT_SECRET_KEY],
    )
    assert first[contract.CLIENT_ID_KEY] == second[contract.CLIENT_ID_KEY] == third[contract.CLIENT_ID_KEY]
    assert posted(admin, namespace, "rotating", "SecretRotated", count=2)


def test_a_secret_the_operator_does_not_own_is_left_alone_with_secret_conflict(
    admin: Admin, namespace: str
) -> None:
    foreign = admin.create_secret(
        namespace, {"metadata": {"name": "taken-oidc"}, "stringData": {"password": "not the operator's"}}
    )
    admin.create_client(namespace, oidcclient("taken", WEB_SPEC))

    client = observed(admin, namespace, "taken")
    after = admin.find_secret(namespace, "taken-oidc")

    assert (condition(client)["status"], condition(client)["reason"]) == ("False", "SecretConflict")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == foreign["metadata"]["resourceVersion"]
    assert "ownerReferences" not in after["metadata"]
    assert posted(admin, namespace, "taken", "SecretConflict")


def test_a_secret_deleted_by_hand_is_restored_with_the_same_client_id(admin: Admin, namespace: str) -> None:
    client, secret = create_ready(admin, namespace, "restored")
    before = decoded(secret)

    admin.delete_secret(namespace, "restored-oidc")
    restored = eventually(
        lambda: (
            (found := admin.find_secret(namespace, "restored-oidc"))
            and found["metadata"]["uid"] != secret["metadata"]["uid"]
            and found
        ),
        "the operator to restore the deleted Secret",
    )
    regenerated = eventually(
        lambda: (
            condition(admin.get_client(namespace, "restored"), "CredentialsRegenerated").get("reason")
            == "SecretDeleted"
        ),
        "the CredentialsRegenerated condition",
    )

    assert regenerated
    assert decoded(restored)[contract.CLIENT_ID_KEY] == before[contract.CLIENT_ID_KEY]
    # The secret itself was lost with the Secret: a new one, which the condition announces.
    assert decoded(restored)[contract.CLIENT_SECRET_KEY] != before[contract.CLIENT_SECRET_KEY]
    assert restored["metadata"]["ownerReferences"][0]["uid"] == client["metadata"]["uid"]


def test_a_secret_edited_by_hand_is_put_back_and_keeps_its_secret(
    admin: Admin, namespace: str, release: Release
) -> None:
    _, secret = create_ready(admin, namespace, "edited")
    before = decoded(secret)

    admin.patch_secret(
        namespace,
        "edited-oidc",
        {"metadata": {"labels": {contract.CLIENT_LABEL: "someone-else"}}, "stringData": {"issuer": "x"}},
    )
    repaired = eventually(
        lambda: (
            (found := admin.find_secret(namespace, "edited-oidc"))
            and decoded(found)[contract.ISSUER_KEY] == release.issuer
            and found["metadata"]["labels"][contract.CLIENT_LABEL] == "edited"
            and found
        ),
        "the operator to put the edited Secret back",
    )

    assert decoded(repaired) == before


def test_the_controller_manager_deletes_the_secret_with_its_client(admin: Admin, namespace: str) -> None:
    create_ready(admin, namespace, "collected")

    admin.delete_client(namespace, "collected")

    eventually(
        lambda: admin.find_secret(namespace, "collected-oidc") is None,
        "the garbage collector to delete the Secret",
        timeout=90,
    )
    assert admin.find_client(namespace, "collected") is None


def test_a_stale_resource_version_gets_409_and_the_operator_retries_cleanly(
    admin: Admin, namespace: str, release: Release, control_plane: ControlPlane, operator: RoleProcess
) -> None:
    client, secret = create_ready(admin, namespace, "raced")
    before = decoded(secret)

    # The API server refuses a write computed from an old read...
    admin.patch_secret(namespace, "raced-oidc", {"metadata": {"annotations": {"example.com/note": "1"}}})
    stale = {"metadata": {"resourceVersion": secret["metadata"]["resourceVersion"]}, "stringData": {"a": "b"}}
    with pytest.raises(ApiException) as caught:
        admin.patch_secret(namespace, "raced-oidc", stale)
    assert caught.value.status == 409

    # ...and so it refuses the operator's repairs while a second writer keeps editing the Secret.
    account = release.service_account("operator")

    def operator_got_409() -> bool:
        return any(
            event["user"]["username"] == account
            and event.get("objectRef", {}).get("resource") == "secrets"
            and event.get("objectRef", {}).get("name") == "raced-oidc"
            and event.get("responseStatus", {}).get("code") == 409
            for event in control_plane.audit_events()
        )

    stop = threading.Event()

    def tamper(writer: int) -> None:
        # Back to back, with no fixed rhythm: a write must land between the operator's read and its patch
        # (a fixed pace can fall in step with the operator's repairs and never do).
        count = 0
        while not stop.is_set():
            count += 1
            issuer = f"https://tampered.example/{writer}/{count}"
            admin.patch_secret(namespace, "raced-oidc", {"stringData": {"issuer": issuer}})
            stop.wait(random.uniform(0, 0.004))

    writers = [threading.Thread(target=tamper, args=(n,), name=f"second-writer-{n}") for n in range(2)]
    for writer in writers:
        writer.start()
    try:
        eventually(operator_got_409, "the operator's stale Secret patch to get 409", timeout=60, interval=0.2)
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=10)

    # The operator read again, retried, and the Secret is as it should be, with the same credentials.
    repaired = eventually(
        lambda: (
            (found := admin.find_secret(namespace, "raced-oidc"))
            and decoded(found)[contract.ISSUER_KEY] == release.issuer
            and found
        ),
        "the operator to repair the Secret after the race",
    )
    assert decoded(repaired) == before
    assert RETRIED in operator.output()
    assert condition(admin.get_client(namespace, "raced"))["status"] == "True"
    assert client["status"]["clientID"] == before[contract.CLIENT_ID_KEY]


def test_an_operator_restart_changes_no_credential(
    admin: Admin, namespace: str, operator: RoleProcess, release: Release, control_plane: ControlPlane
) -> None:
    create_ready(admin, namespace, "survivor")
    admin.annotate_client(namespace, "survivor", contract.ROTATE_ANNOTATION, "before-restart")
    eventually(
        lambda: (
            ((admin.get_client(namespace, "survivor").get("status") or {}).get("rotation") or {}).get(
                "lastValue"
            )
            == "before-restart"
        ),
        "the rotation before the restart",
    )

    def snapshot() -> dict[str, Any]:
        clients = admin.list_clients(namespace)
        secrets = admin.list_secrets(namespace, contract.SECRET_SELECTOR)
        return {
            "clients": {
                c["metadata"]["name"]: (c["status"].get("clientID"), c["status"].get("rotation"))
                for c in clients
            },
            "secrets": {s["metadata"]["name"]: s["data"] for s in secrets},
        }

    account = release.service_account("operator")

    def reconciles() -> Counter[str]:
        """How often the operator has read each client's Secret: once per reconcile of a client whose
        status records it (the client itself comes in kopf's listing at start, and is not read)."""
        return Counter(
            ref["name"].removesuffix("-oidc")
            for event in control_plane.audit_events()
            if event["user"]["username"] == account and event["verb"] == "get"
            for ref in [event.get("objectRef") or {}]
            if ref.get("resource") == "secrets" and ref.get("namespace") == namespace
        )

    before = snapshot()
    reads = reconciles()
    operator.restart()
    # kopf resumes every existing OIDCClient at start: wait until each of this namespace's that records a
    # Secret had it read again (one blocked before it got a client ID has no Secret to read).
    recorded = [name for name, (client_id, _) in before["clients"].items() if client_id]
    eventually(
        lambda: all(reconciles()[name] > reads[name] for name in recorded),
        "the restarted operator to reconcile every client",
        timeout=60,
    )
    # And it still works: a new client is served by the restarted operator.
    create_ready(admin, namespace, "after-restart")

    after = snapshot()
    del after["clients"]["after-restart"], after["secrets"]["after-restart-oidc"]
    assert after == before


def test_the_largest_client_the_crd_allows_is_reconciled_and_its_changes_seen(
    admin: Admin, namespace: str, operator: RoleProcess
) -> None:
    # 100 redirect URIs and 100 post-logout URIs of nearly 2048 bytes: the API server keeps all of an
    # object's annotations under 256 KiB together, and kopf records what it last handled in one.
    uris = [f"https://app.example.com/{n:03d}/{'a' * 2000}" for n in range(100)]
    spec = {"redirectURIs": uris, "postLogoutRedirectURIs": uris}
    create_ready(admin, namespace, "largest", spec)

    changed = [*uris[:-1], "https://app.example.com/changed"]
    admin.patch_client(namespace, "largest", {"spec": {"redirectURIs": changed}})
    client = observed(admin, namespace, "largest", generation=2)

    annotations = client["metadata"].get("annotations") or {}
    assert condition(client)["status"] == "True"
    # kopf records nothing on the object (its event handlers need no record): no annotation to outgrow.
    assert not [key for key in annotations if key.startswith(KOPF_ANNOTATIONS)]
    assert "262144 bytes" not in operator.output()


def test_a_secret_stripped_of_the_manager_label_gets_it_back(admin: Admin, namespace: str) -> None:
    # Watches select Secrets by that label: on a real API server the Secret leaves both watches.
    _, secret = create_ready(admin, namespace, "unlabelled")

    admin.patch_secret(
        namespace, "unlabelled-oidc", {"metadata": {"labels": {contract.MANAGED_BY_LABEL: None}}}
    )
    relabelled = eventually(
        lambda: (
            (found := admin.find_secret(namespace, "unlabelled-oidc"))
            and contract.MANAGED_BY_LABEL in found["metadata"].get("labels", {})
            and found
        ),
        "the operator to put the manager label back",
    )

    assert decoded(relabelled) == decoded(secret)


def test_a_new_secret_name_moves_the_credentials_and_deletes_the_old_secret(
    admin: Admin, namespace: str
) -> None:
    _, secret = create_ready(admin, namespace, "moving")

    admin.patch_client(namespace, "moving", {"spec": {"secretName": "moving-credentials"}})
    client = observed(admin, namespace, "moving", generation=2)
    eventually(lambda: admin.find_secret(namespace, "moving-oidc") is None, "the old Secret to be deleted")
    moved = admin.find_secret(namespace, "moving-credentials")

    assert client["status"]["secretName"] == "moving-credentials"
    assert moved is not None
    assert decoded(moved) == decoded(secret)
    assert posted(admin, namespace, "moving", "SecretMoved")


def test_a_pinned_client_id_already_used_is_refused_with_client_id_conflict(
    admin: Admin, namespace: str
) -> None:
    pinned = {**WEB_SPEC, "clientID": "shared-client-id"}
    create_ready(admin, namespace, "first-claim", pinned)
    admin.create_client(namespace, oidcclient("second-claim", pinned))

    second = observed(admin, namespace, "second-claim")

    assert (condition(second)["status"], condition(second)["reason"]) == ("False", "ClientIDConflict")
    assert admin.find_secret(namespace, "second-claim-oidc") is None
    assert condition(admin.get_client(namespace, "first-claim"))["status"] == "True"


def test_a_secret_key_the_api_server_refuses_is_reported_as_invalid_spec(
    admin: Admin, namespace: str
) -> None:
    # The CRD's pattern admits "..", which the API server refuses as a Secret key (a mounted file name).
    admin.create_client(
        namespace, oidcclient("dotted", {**WEB_SPEC, "secretTemplate": {"keys": {"clientID": ".."}}})
    )

    client = observed(admin, namespace, "dotted")

    assert (condition(client)["status"], condition(client)["reason"]) == ("False", "InvalidSpec")
    assert "'..' is not a valid Secret key" in condition(client)["message"]
    assert admin.find_secret(namespace, "dotted-oidc") is None
    assert posted(admin, namespace, "dotted", "InvalidSpec")
