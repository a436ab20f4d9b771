"""The operator's decisions, dict in, dict out: what Secret and status each OIDCClient gets."""

from __future__ import annotations

import base64
import copy
import datetime
import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from kubeoidc_contract import (
    CLIENT_ID_KEY,
    CLIENT_LABEL,
    CLIENT_SECRET_KEY,
    ISSUER_KEY,
    MANAGED_BY_LABEL,
    PREVIOUS_SECRET_EXPIRES_ANNOTATION,
    PREVIOUS_SECRET_HASH_ANNOTATION,
    PRIVATE_KEY_JWT_AUTH_METHOD,
    ROTATE_ANNOTATION,
    SERVICE_ACCOUNT_AUTH_METHOD,
    STATUS_CREDENTIALS,
)
from kubeoidc_contract.durations import parse_duration
from kubeoidc_operator import ownership, reconcile, rotation
from kubeoidc_operator.desired import secret_patch

Factory = Callable[..., Any]


def reasons(plan: reconcile.Plan) -> list[str]:
    return [event.reason for event in plan.events]


# --- Creation -------------------------------------------------------------------------------------------


def test_new_client_gets_a_secret_with_credentials_labels_and_owner(cluster: Factory) -> None:
    c = cluster()
    plan = c.reconcile()

    assert plan.action == "create"
    secret = c.secrets["web-oidc"]
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["namespace"] == "apps"
    assert secret["metadata"]["labels"] == {MANAGED_BY_LABEL: "kubeoidc", CLIENT_LABEL: "web"}
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
    assert c.data() == {
        CLIENT_ID_KEY: "client-0001",
        CLIENT_SECRET_KEY: "secret0000000000000000000000000000000000001",
        ISSUER_KEY: "https://login.example.com",
    }
    assert "stringData" not in secret
    assert reasons(plan) == ["SecretCreated"]


def test_new_client_status_reports_ready_with_client_id_and_secret_name(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()

    status = c.client["status"]
    assert status["clientID"] == "client-0001"
    assert status["secretName"] == "web-oidc"
    assert status["observedGeneration"] == 1
    assert c.condition("Ready") == {
        "type": "Ready",
        "status": "True",
        "reason": "Reconciled",
        "message": "Secret 'web-oidc' holds the credentials of client ID 'client-0001'.",
        "lastTransitionTime": "2025-01-01T12:00:00Z",
        "observedGeneration": 1,
    }
    assert c.condition("CredentialsRegenerated")["status"] == "False"
    assert c.condition("CredentialsRegenerated")["reason"] == "Generated"


def test_default_random_credentials_have_256_bit_secrets() -> None:
    generator = rotation.RandomCredentials()
    secret = generator.client_secret()
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert generator.client_secret() != secret
    assert len(generator.client_id()) == 32


def test_spec_secret_name_overrides_the_default_name(cluster: Factory) -> None:
    c = cluster(spec={"secretName": "web-credentials"})
    c.reconcile()
    assert set(c.secrets) == {"web-credentials"}
    assert c.client["status"]["secretName"] == "web-credentials"


# --- Idempotence ----------------------------------------------------------------------------------------


def test_hundred_reconciles_of_an_unchanged_client_write_nothing(cluster: Factory) -> None:
    c = cluster(
        spec={
            "secretTemplate": {
                "labels": {"team": "a"},
                "annotations": {"note": "x"},
                "keys": {"clientID": "ID"},
            },
            "secretRotation": {"gracePeriod": "1h"},
        },
        annotations={ROTATE_ANNOTATION: "first"},
    )
    c.reconcile()
    c.annotate(**{ROTATE_ANNOTATION: "second"})
    c.reconcile()  # A rotation with a grace period running: the steady state with the most in it.
    secret, client = copy.deepcopy(c.secrets), copy.deepcopy(c.client)
    writes = c.writes

    for minute in range(100):
        c.now += datetime.timedelta(seconds=30 * minute % 60)
        plan = c.reconcile()
        assert plan.action == "none"
        assert plan.status == {}
        assert plan.events == ()
        assert plan.delete_secret is None

    assert c.writes == writes
    assert c.secrets == secret
    assert c.client == client


def test_a_resync_after_a_restart_changes_nothing(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    c.credentials = type(c.credentials)()  # A new process: its generator starts over.
    plan = c.reconcile()
    assert not plan.writes


# --- Rotation -------------------------------------------------------------------------------------------


def test_rotation_value_seen_twice_rotates_once(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    old = c.data()

    c.annotate(**{ROTATE_ANNOTATION: "2025-06-01"})
    c.now += datetime.timedelta(minutes=5)
    first = c.reconcile()
    rotated = c.data()
    second = c.reconcile()

    assert rotated[CLIENT_SECRET_KEY] != old[CLIENT_SECRET_KEY]
    assert rotated[CLIENT_ID_KEY] == old[CLIENT_ID_KEY]
    assert reasons(first) == ["SecretRotated"]
    assert first.events[0].type == "Normal"
    assert not second.writes
    assert c.data() == rotated
    assert c.client["status"]["rotation"] == {"lastValue": "2025-06-01", "lastTime": "2025-01-01T12:05:00Z"}
    assert c.condition("CredentialsRegenerated")["reason"] == "Rotated"


def test_each_new_rotation_value_rotates_again(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    seen = {c.data()[CLIENT_SECRET_KEY]}
    for value in ["1", "2", "1"]:
        c.annotate(**{ROTATE_ANNOTATION: value})
        c.reconcile()
        seen.add(c.data()[CLIENT_SECRET_KEY])
    assert len(seen) == 4


def test_rotation_is_not_repeated_when_the_status_write_was_lost(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    c.annotate(**{ROTATE_ANNOTATION: "v2"})
    c.apply(c.plan(), status=False)  # The Secret was written, then the status patch failed.
    rotated = c.data()

    again = c.reconcile()

    assert c.data() == rotated
    assert "SecretRotated" not in reasons(again)
    assert c.client["status"]["rotation"]["lastValue"] == "v2"


def test_first_rotation_value_on_a_new_client_is_recorded_without_rotating(cluster: Factory) -> None:
    c = cluster(annotations={ROTATE_ANNOTATION: "initial"})
    plan = c.reconcile()
    assert reasons(plan) == ["SecretCreated"]
    assert c.credentials.secrets == 1  # Generated once, not rotated right after.
    assert c.client["status"]["rotation"] == {"lastValue": "initial", "lastTime": "2025-01-01T12:00:00Z"}
    assert not c.reconcile().writes


def test_removing_the_rotation_annotation_keeps_the_secret_and_the_record(cluster: Factory) -> None:
    c = cluster(annotations={ROTATE_ANNOTATION: "v1"})
    c.reconcile()
    before = c.data()
    del c.client["metadata"]["annotations"][ROTATE_ANNOTATION]
    assert not c.reconcile().writes
    assert c.data() == before
    assert c.client["status"]["rotation"]["lastValue"] == "v1"


def test_rotation_request_on_a_public_client_is_recorded_and_skipped(cluster: Factory) -> None:
    c = cluster(spec={"public": True, "tokenEndpointAuthMethod": "none"})
    c.reconcile()
    c.annotate(**{ROTATE_ANNOTATION: "x"})
    plan = c.reconcile()
    assert reasons(plan) == ["RotationSkipped"]
    assert CLIENT_SECRET_KEY not in c.data()
    assert not c.reconcile().writes


# --- Grace period ---------------------------------------------------------------------------------------


def test_rotation_with_a_grace_period_keeps_the_previous_secret_hash_until_it_expires(
    cluster: Factory,
) -> None:
    c = cluster(spec={"secretRotation": {"gracePeriod": "1h30m"}})
    c.reconcile()
    old_secret = c.data()[CLIENT_SECRET_KEY]

    c.annotate(**{ROTATE_ANNOTATION: "r1"})
    plan = c.reconcile()

    annotations = c.secret["metadata"]["annotations"]
    assert annotations[PREVIOUS_SECRET_HASH_ANNOTATION] == hashlib.sha256(old_secret.encode()).hexdigest()
    assert annotations[PREVIOUS_SECRET_EXPIRES_ANNOTATION] == "2025-01-01T13:30:00Z"
    assert "stays valid until 2025-01-01T13:30:00Z" in plan.events[0].message

    c.now += datetime.timedelta(minutes=89)
    assert not c.reconcile().writes  # Still running.

    c.now += datetime.timedelta(minutes=1)
    expired = c.reconcile()  # The next resync after the expiry drops them.
    assert expired.action == "patch"
    assert PREVIOUS_SECRET_HASH_ANNOTATION not in c.secret["metadata"].get("annotations", {})
    assert PREVIOUS_SECRET_EXPIRES_ANNOTATION not in c.secret["metadata"].get("annotations", {})
    assert c.data()[CLIENT_SECRET_KEY] != old_secret


def test_rotation_without_a_grace_period_refuses_the_previous_secret_at_once(cluster: Factory) -> None:
    c = cluster(spec={"secretRotation": {"gracePeriod": "1h"}})
    c.reconcile()
    c.annotate(**{ROTATE_ANNOTATION: "r1"})
    c.reconcile()
    c.edit_spec(secretRotation={"gracePeriod": "0s"})
    c.annotate(**{ROTATE_ANNOTATION: "r2"})
    plan = c.reconcile()
    assert PREVIOUS_SECRET_HASH_ANNOTATION not in c.secret["metadata"].get("annotations", {})
    assert "is refused from now on" in plan.events[0].message


# --- Lost status, public and pinned clients ------------------------------------------------------------


def test_lost_status_recovers_the_same_credentials_from_the_secret(cluster: Factory) -> None:
    c = cluster(annotations={ROTATE_ANNOTATION: "v1"})
    c.reconcile()
    c.annotate(**{ROTATE_ANNOTATION: "v2"})
    c.reconcile()
    before = c.data()

    del c.client["status"]  # Restored from a backup without status, say.
    plan = c.reconcile()

    assert c.data() == before
    assert plan.action == "none"
    assert c.client["status"]["clientID"] == before[CLIENT_ID_KEY]
    assert c.client["status"]["rotation"] == {"lastValue": "v2"}
    assert c.condition("Ready")["status"] == "True"
    assert c.condition("CredentialsRegenerated")["reason"] == "Recovered"
    assert reasons(plan) == ["CredentialsRecovered"]
    assert not c.reconcile().writes


def test_public_client_gets_no_client_secret(cluster: Factory) -> None:
    c = cluster(
        spec={
            "public": True,
            "tokenEndpointAuthMethod": "none",
            "secretTemplate": {"keys": {"clientSecret": "S"}},
        }
    )
    c.reconcile()
    assert set(c.data()) == {CLIENT_ID_KEY, ISSUER_KEY}
    assert c.credentials.secrets == 0
    assert "public client has no secret" in c.condition("Ready")["message"]


def test_a_client_turned_public_loses_its_secret(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    client_id = c.data()[CLIENT_ID_KEY]
    c.edit_spec(public=True, tokenEndpointAuthMethod="none")
    c.reconcile()
    assert c.data() == {CLIENT_ID_KEY: client_id, ISSUER_KEY: "https://login.example.com"}


SERVICE_ACCOUNT_SPEC = {
    "grantTypes": ["client_credentials"],
    "tokenEndpointAuthMethod": SERVICE_ACCOUNT_AUTH_METHOD,
    "serviceAccounts": ["billing"],
}


def test_a_client_that_service_accounts_authenticate_gets_client_id_and_issuer_only(cluster: Factory) -> None:
    c = cluster(spec={**SERVICE_ACCOUNT_SPEC, "secretTemplate": {"keys": {"clientSecret": "S"}}})
    c.reconcile()
    assert set(c.data()) == {CLIENT_ID_KEY, ISSUER_KEY}
    assert c.credentials.secrets == 0
    assert "ServiceAccount tokens authenticate it: it has no secret" in c.condition("Ready")["message"]


def test_a_client_moved_to_service_accounts_loses_its_secret_and_keeps_its_id(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    client_id = c.data()[CLIENT_ID_KEY]
    c.edit_spec(**SERVICE_ACCOUNT_SPEC)
    c.reconcile()
    assert c.data() == {CLIENT_ID_KEY: client_id, ISSUER_KEY: "https://login.example.com"}


def test_rotation_request_on_a_service_account_client_is_recorded_and_skipped(cluster: Factory) -> None:
    c = cluster(spec=SERVICE_ACCOUNT_SPEC)
    c.reconcile()
    c.annotate(**{ROTATE_ANNOTATION: "x"})
    plan = c.reconcile()
    assert reasons(plan) == ["RotationSkipped"]
    assert CLIENT_SECRET_KEY not in c.data()
    assert not c.reconcile().writes


OWN_KEY_SPEC = {
    "grantTypes": ["client_credentials"],
    "tokenEndpointAuthMethod": PRIVATE_KEY_JWT_AUTH_METHOD,
    "jwksURI": "https://billing.example.com/jwks.json",
}


def test_a_client_with_its_own_keys_gets_client_id_and_issuer_only_and_publishes_no_hash(
    cluster: Factory,
) -> None:
    c = cluster(spec={**OWN_KEY_SPEC, "secretTemplate": {"keys": {"clientSecret": "S"}}})
    c.reconcile()
    assert set(c.data()) == {CLIENT_ID_KEY, ISSUER_KEY}
    assert c.credentials.secrets == 0
    assert c.client["status"][STATUS_CREDENTIALS] == {"clientID": c.data()[CLIENT_ID_KEY]}
    assert "signs its assertions with its own key" in c.condition("Ready")["message"]


def test_a_client_moved_to_its_own_keys_loses_its_secret_and_keeps_its_id(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    client_id = c.data()[CLIENT_ID_KEY]
    c.edit_spec(**OWN_KEY_SPEC)
    c.reconcile()
    assert c.data() == {CLIENT_ID_KEY: client_id, ISSUER_KEY: "https://login.example.com"}


def test_rotation_request_on_a_client_with_its_own_keys_is_recorded_and_skipped(cluster: Factory) -> None:
    c = cluster(spec=OWN_KEY_SPEC)
    c.reconcile()
    c.annotate(**{ROTATE_ANNOTATION: "x"})
    plan = c.reconcile()
    assert reasons(plan) == ["RotationSkipped"]
    assert "A client authenticated by its own keys has no secret to rotate" in plan.events[0].message
    assert CLIENT_SECRET_KEY not in c.data()
    assert not c.reconcile().writes


def test_pinned_client_id_is_written_instead_of_a_generated_one(cluster: Factory) -> None:
    c = cluster(spec={"clientID": "legacy-app-42"})
    c.reconcile()
    assert c.data()[CLIENT_ID_KEY] == "legacy-app-42"
    assert c.client["status"]["clientID"] == "legacy-app-42"
    assert c.credentials.ids == 0


def test_pinned_client_id_used_by_another_client_is_a_conflict(cluster: Factory) -> None:
    c = cluster(spec={"clientID": "legacy-app-42"})
    c.claimed = {"legacy-app-42": "other/old-app"}
    plan = c.reconcile()

    assert plan.secret is None
    assert c.secrets == {}
    ready = c.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ClientIDConflict")
    assert "other/old-app" in ready["message"]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "ClientIDConflict")]
    assert "clientID" not in c.client["status"]
    assert not c.reconcile().writes  # Reported once, not at every resync.


def test_conflict_resolved_turns_ready_true_again(cluster: Factory) -> None:
    c = cluster(spec={"clientID": "legacy-app-42"})
    c.claimed = {"legacy-app-42": "other/old-app"}
    c.reconcile()
    c.claimed = {}
    c.now += datetime.timedelta(minutes=1)
    c.reconcile()
    assert c.condition("Ready")["status"] == "True"
    assert c.condition("Ready")["lastTransitionTime"] == "2025-01-01T12:01:00Z"
    assert c.data()[CLIENT_ID_KEY] == "legacy-app-42"


# --- Claims on client IDs -------------------------------------------------------------------------------


def test_older_client_pinning_an_id_claims_it(client_factory: Factory) -> None:
    me = client_factory("new", spec={"clientID": "shared-id-1"}, created="2025-02-01T00:00:00Z")
    older = client_factory(
        "old", namespace="other", spec={"clientID": "shared-id-1"}, created="2025-01-01T00:00:00Z"
    )
    assert ownership.claimed_client_ids(me, [me, older]) == {"shared-id-1": "other/old"}
    assert ownership.claimed_client_ids(older, [older, me]) == {}


def test_client_holding_an_id_keeps_it_against_an_older_pin(client_factory: Factory) -> None:
    holder = client_factory("holder", status={"clientID": "shared-id-1"}, created="2025-02-01T00:00:00Z")
    pinner = client_factory("pinner", spec={"clientID": "shared-id-1"}, created="2025-01-01T00:00:00Z")
    assert ownership.claimed_client_ids(holder, [pinner]) == {}
    assert ownership.claimed_client_ids(pinner, [holder]) == {"shared-id-1": "apps/holder"}


def test_clients_being_deleted_claim_nothing(client_factory: Factory) -> None:
    me = client_factory("me", spec={"clientID": "shared-id-1"})
    gone = client_factory("gone", status={"clientID": "shared-id-1"})
    gone["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert ownership.claimed_client_ids(me, [gone]) == {}


# --- Secrets that are not ours --------------------------------------------------------------------------


def test_unowned_secret_is_left_untouched_and_reported(cluster: Factory, unowned_secret: Factory) -> None:
    c = cluster()
    c.secrets["web-oidc"] = unowned_secret("web-oidc")
    before = copy.deepcopy(c.secrets)

    plan = c.reconcile()

    assert plan.action == "none"
    assert plan.secret is None
    assert plan.delete_secret is None
    assert c.secrets == before
    ready = c.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretConflict")
    assert "'web-oidc'" in ready["message"]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "SecretConflict")]
    assert not c.reconcile().writes


def test_secret_that_lost_our_owner_reference_is_no_longer_ours(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    del c.secret["metadata"]["ownerReferences"]
    before = copy.deepcopy(c.secrets)
    c.reconcile()
    assert c.secrets == before
    assert c.condition("Ready")["reason"] == "SecretConflict"


def test_secret_controlled_by_someone_else_is_not_ours_even_with_our_reference(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    c.secret["metadata"]["ownerReferences"][0]["controller"] = False
    c.secret["metadata"]["ownerReferences"].append(
        {"kind": "Thing", "name": "x", "uid": "x", "controller": True}
    )
    c.reconcile()
    assert c.condition("Ready")["reason"] == "SecretConflict"


def test_removing_the_unowned_secret_lets_the_client_become_ready(
    cluster: Factory, unowned_secret: Factory
) -> None:
    c = cluster()
    c.secrets["web-oidc"] = unowned_secret("web-oidc")
    c.reconcile()
    del c.secrets["web-oidc"]
    plan = c.reconcile()
    assert plan.action == "create"
    assert c.condition("Ready")["reason"] == "Reconciled"


# --- Deleted and edited Secrets -------------------------------------------------------------------------


def test_deleted_secret_is_recreated_with_the_same_client_id_and_a_new_secret(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    before = c.data()
    del c.secrets["web-oidc"]

    plan = c.reconcile()

    after = c.data()
    assert plan.action == "create"
    assert after[CLIENT_ID_KEY] == before[CLIENT_ID_KEY]
    assert after[CLIENT_SECRET_KEY] != before[CLIENT_SECRET_KEY]
    condition = c.condition("CredentialsRegenerated")
    assert (condition["status"], condition["reason"]) == ("True", "SecretDeleted")
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "CredentialsRegenerated")]
    assert c.condition("Ready")["status"] == "True"
    assert not c.reconcile().writes


def test_a_rotation_after_a_regeneration_clears_the_condition(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    del c.secrets["web-oidc"]
    c.reconcile()
    c.annotate(**{ROTATE_ANNOTATION: "ack"})
    c.reconcile()
    condition = c.condition("CredentialsRegenerated")
    assert (condition["status"], condition["reason"]) == ("False", "Rotated")


def test_deleted_secret_of_a_public_client_is_restored_unchanged(cluster: Factory) -> None:
    c = cluster(spec={"public": True, "tokenEndpointAuthMethod": "none"})
    c.reconcile()
    before = copy.deepcopy(c.secret)
    del c.secrets["web-oidc"]
    plan = c.reconcile()
    assert c.secret == before
    assert reasons(plan) == ["SecretRestored"]


def test_hand_edited_secret_is_restored_keeping_a_well_formed_secret(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    expected = copy.deepcopy(c.secret)
    meta = c.secret["metadata"]
    meta["labels"] = {"edited": "yes"}
    meta["annotations"] = {"someone": "was here"}
    meta["resourceVersion"] = "42"
    c.secret["data"][CLIENT_ID_KEY] = base64.b64encode(b"hijacked-id").decode()
    c.secret["data"][ISSUER_KEY] = base64.b64encode(b"https://evil.example.com").decode()
    c.secret["data"]["extra"] = base64.b64encode(b"x").decode()

    plan = c.reconcile()

    assert plan.action == "patch"
    assert plan.secret_patch is not None
    assert plan.secret_patch["metadata"]["resourceVersion"] == "42"
    del c.secret["metadata"]["resourceVersion"]
    assert c.secret == expected
    assert reasons(plan) == ["SecretUpdated"]
    assert "data client_id, extra, issuer" in plan.events[0].message
    assert c.condition("CredentialsRegenerated")["reason"] == "Generated"


@pytest.mark.parametrize("value", [None, "short", "not base64 !!!"])
def test_missing_or_malformed_client_secret_is_replaced_with_a_condition(
    cluster: Factory, value: str | None
) -> None:
    c = cluster()
    c.reconcile()
    client_id = c.data()[CLIENT_ID_KEY]
    if value is None:
        del c.secret["data"][CLIENT_SECRET_KEY]
    elif value == "short":
        c.secret["data"][CLIENT_SECRET_KEY] = base64.b64encode(b"changeme").decode()
    else:
        c.secret["data"][CLIENT_SECRET_KEY] = value

    plan = c.reconcile()

    assert c.data()[CLIENT_ID_KEY] == client_id
    assert c.data()[CLIENT_SECRET_KEY] == "secret0000000000000000000000000000000000002"
    condition = c.condition("CredentialsRegenerated")
    assert (condition["status"], condition["reason"]) == ("True", "SecretValueInvalid")
    assert ("Warning", "CredentialsRegenerated") in [(e.type, e.reason) for e in plan.events]


def test_issuer_change_in_the_settings_updates_the_secret(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    c.issuer = "https://id.example.org"
    plan = c.reconcile()
    assert plan.action == "patch"
    assert c.data()[ISSUER_KEY] == "https://id.example.org"


# --- Moving the Secret ----------------------------------------------------------------------------------


def test_secret_name_change_moves_credentials_and_deletes_the_owned_old_secret(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    before = c.data()
    c.edit_spec(secretName="web-v2")

    plan = c.reconcile()

    assert plan.action == "create"
    assert plan.delete_secret == "web-oidc"
    assert set(c.secrets) == {"web-v2"}
    assert c.data("web-v2") == before
    assert c.client["status"]["secretName"] == "web-v2"
    assert reasons(plan) == ["SecretMoved"]
    assert c.condition("Ready")["reason"] == "Reconciled"
    assert not c.reconcile().writes


def test_secret_name_change_leaves_an_old_secret_that_is_not_ours(
    cluster: Factory, unowned_secret: Factory
) -> None:
    c = cluster()
    c.reconcile()
    client_id = c.data()[CLIENT_ID_KEY]
    c.secrets["web-oidc"] = unowned_secret("web-oidc")  # Replaced by someone else meanwhile.
    c.edit_spec(secretName="web-v2")

    plan = c.reconcile()

    assert plan.delete_secret is None
    assert c.secrets["web-oidc"] == unowned_secret("web-oidc")
    assert c.data("web-v2")[CLIENT_ID_KEY] == client_id


def test_secret_name_change_to_an_unowned_secret_keeps_the_old_one(
    cluster: Factory, unowned_secret: Factory
) -> None:
    c = cluster()
    c.reconcile()
    c.secrets["taken"] = unowned_secret("taken")
    c.edit_spec(secretName="taken")

    plan = c.reconcile()

    assert plan.delete_secret is None
    assert "web-oidc" in c.secrets
    assert c.secrets["taken"] == unowned_secret("taken")
    assert c.client["status"]["secretName"] == "web-oidc"
    assert c.condition("Ready")["reason"] == "SecretConflict"


def test_interrupted_move_finishes_on_the_next_reconcile(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    before = c.data()
    c.edit_spec(secretName="web-v2")
    plan = c.plan()
    c.secrets["web-v2"] = copy.deepcopy(plan.secret)  # Created, then the operator stopped.

    again = c.reconcile()

    assert again.delete_secret == "web-oidc"
    assert set(c.secrets) == {"web-v2"}
    assert c.data("web-v2") == before


# --- secretTemplate -------------------------------------------------------------------------------------


def test_secret_template_adds_labels_annotations_and_extra_keys(cluster: Factory) -> None:
    c = cluster(
        spec={
            "secretTemplate": {
                "labels": {"team": "payments"},
                "annotations": {"reloader.stakater.com/match": "true"},
                "keys": {
                    "clientID": "OIDC_CLIENT_ID",
                    "clientSecret": "OIDC_CLIENT_SECRET",
                    "issuer": "OIDC_ISSUER",
                },
            }
        }
    )
    c.reconcile()
    meta = c.secret["metadata"]
    assert meta["labels"] == {"team": "payments", MANAGED_BY_LABEL: "kubeoidc", CLIENT_LABEL: "web"}
    assert meta["annotations"] == {"reloader.stakater.com/match": "true"}
    data = c.data()
    assert data["OIDC_CLIENT_ID"] == data[CLIENT_ID_KEY]
    assert data["OIDC_CLIENT_SECRET"] == data[CLIENT_SECRET_KEY]
    assert data["OIDC_ISSUER"] == data[ISSUER_KEY]


def test_template_changes_are_applied_and_old_entries_removed(cluster: Factory) -> None:
    c = cluster(spec={"secretTemplate": {"labels": {"team": "a"}, "keys": {"clientID": "OLD_ID"}}})
    c.reconcile()
    c.client["spec"]["secretTemplate"] = {"labels": {"tier": "b"}, "keys": {"clientID": "NEW_ID"}}
    c.reconcile()
    assert c.secret["metadata"]["labels"] == {"tier": "b", MANAGED_BY_LABEL: "kubeoidc", CLIENT_LABEL: "web"}
    assert "OLD_ID" not in c.data()
    assert c.data()["NEW_ID"] == c.data()[CLIENT_ID_KEY]


# --- Invalid specs and deletion -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"secretRotation": {"gracePeriod": "one day"}}, "gracePeriod"),
        ({"secretRotation": {"gracePeriod": 5}}, "gracePeriod"),
        ({"secretName": "Not_A_Name"}, "spec.secretName"),
        ({"clientID": "x"}, "spec.clientID"),
        ({"secretTemplate": {"labels": {MANAGED_BY_LABEL: "me"}}}, "operator sets it"),
        ({"secretTemplate": {"annotations": {PREVIOUS_SECRET_HASH_ANNOTATION: "0"}}}, "operator sets it"),
        ({"secretTemplate": {"keys": {"clientSecret": CLIENT_ID_KEY}}}, "already written"),
        ({"secretTemplate": {"keys": {"clientID": "A", "issuer": "A"}}}, "already written"),
        ({"secretTemplate": {"labels": {"team": "not a label value"}}}, "invalid label value"),
        # The API server refuses these Secret keys, which the CRD's pattern lets through.
        ({"secretTemplate": {"keys": {"clientID": "."}}}, "not a valid Secret key"),
        ({"secretTemplate": {"keys": {"clientID": ".."}}}, "not a valid Secret key"),
        ({"secretTemplate": {"keys": {"issuer": "..data"}}}, "not a valid Secret key"),
        ({"public": "yes"}, "spec.public"),
        # Front-Channel Logout 1.0 §2: the logout page belongs to the application's origin.
        (
            {
                "redirectURIs": ["https://app.example.com/cb"],
                "frontchannelLogoutURI": "https://evil.example/x",
            },
            "spec.frontchannelLogoutURI must have the scheme, host and port of one of spec.redirectURIs",
        ),
        (
            {
                "redirectURIs": ["https://app.example.com/cb"],
                "frontchannelLogoutURI": "https://app.example.com:8443/",
            },
            "spec.frontchannelLogoutURI",
        ),
        # A client's keys, for objects no CRD checked (the dev mode, an API server without the CRD's rules).
        ({"tokenEndpointAuthMethod": PRIVATE_KEY_JWT_AUTH_METHOD}, "exactly one of jwks and jwksURI"),
        ({"jwksURI": "https://app.example.com/jwks"}, "spec.jwksURI needs tokenEndpointAuthMethod"),
        ({**OWN_KEY_SPEC, "jwks": {"keys": [{"kty": "EC"}]}}, "exactly one of jwks and jwksURI"),
        (
            {**OWN_KEY_SPEC, "jwksURI": None, "jwks": {"keys": [{"kty": "RSA", "e": "AQAB", "d": "AQ"}]}},
            "spec.jwks.keys[0] holds private members (d)",
        ),
        (
            {**OWN_KEY_SPEC, "jwksURI": None, "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}},
            "spec.jwks.keys[0] is not an RSA, EC or OKP public key",
        ),
        ({**OWN_KEY_SPEC, "jwksURI": None, "jwks": {"keys": []}}, "spec.jwks.keys must be a non-empty list"),
    ],
)
def test_invalid_spec_is_reported_without_writing(
    cluster: Factory, spec: dict[str, Any], fragment: str
) -> None:
    c = cluster(spec=spec)
    plan = c.reconcile()
    assert plan.secret is None
    assert c.secrets == {}
    ready = c.condition("Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert fragment in ready["message"]
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "InvalidSpec")]
    assert not c.reconcile().writes


def test_a_frontchannel_logout_uri_on_a_redirect_uris_origin_is_valid(cluster: Factory) -> None:
    spec = {
        "redirectURIs": ["https://app.example.com/cb"],
        "frontchannelLogoutURI": "https://APP.example.com:443/logout?frontchannel=1",
    }
    c = cluster(spec=spec)

    c.reconcile()

    assert c.condition("Ready")["status"] == "True"


def test_invalid_spec_after_creation_leaves_the_secret_alone(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    before = copy.deepcopy(c.secrets)
    c.edit_spec(secretRotation={"gracePeriod": "soon"})
    c.annotate(**{ROTATE_ANNOTATION: "now"})
    c.reconcile()
    assert c.secrets == before
    assert c.condition("Ready")["reason"] == "InvalidSpec"
    assert c.client["status"]["observedGeneration"] == 2


def test_overlong_rotation_value_is_invalid_instead_of_failing_the_status_write(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    c.annotate(**{ROTATE_ANNOTATION: "x" * 1025})
    c.reconcile()
    assert c.condition("Ready")["reason"] == "InvalidSpec"
    assert "longer than 1024 characters" in c.condition("Ready")["message"]


def test_missing_uid_is_invalid(cluster: Factory) -> None:
    c = cluster()
    del c.client["metadata"]["uid"]
    c.reconcile()
    assert c.condition("Ready")["reason"] == "InvalidSpec"


def test_client_being_deleted_is_left_to_the_garbage_collector(cluster: Factory) -> None:
    c = cluster()
    c.reconcile()
    c.client["metadata"]["deletionTimestamp"] = "2025-01-01T13:00:00Z"
    del c.secrets["web-oidc"]
    assert not c.reconcile().writes
    assert c.secrets == {}


def test_client_without_generation_gets_no_observed_generation(cluster: Factory) -> None:
    c = cluster()
    del c.client["metadata"]["generation"]
    c.reconcile()
    assert "observedGeneration" not in c.client["status"]
    assert "observedGeneration" not in c.condition("Ready")


# --- Helpers on objects ---------------------------------------------------------------------------------


def test_owner_of_a_secret_is_its_controller_then_its_label(
    cluster: Factory, unowned_secret: Factory
) -> None:
    c = cluster()
    c.reconcile()
    assert ownership.owner_of(c.secret) == "web"
    labelled = unowned_secret("x")
    labelled["metadata"]["labels"] = {CLIENT_LABEL: "other"}
    assert ownership.owner_of(labelled) == "other"
    assert ownership.owner_of(unowned_secret("y")) is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("0s", 0), ("10m", 600), ("24h", 86400), ("1h30m", 5400), ("1h0m5s", 3605)]
)
def test_grace_periods_parse_as_go_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "1d", "-1s", "1.5h", "h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_secret_patch_is_empty_for_equal_data_spelled_differently() -> None:
    current = {"metadata": {"labels": {"a": "1"}}, "data": {"k": base64.b64encode(b"v").decode()}}
    desired: dict[str, Any] = {
        "metadata": {"labels": {"a": "1"}},
        "data": {"k": base64.b64encode(b"v").decode()},
    }
    assert secret_patch(current, desired) == {}
    desired["metadata"]["labels"] = {"b": "2"}
    assert secret_patch(current, desired) == {"metadata": {"labels": {"a": None, "b": "2"}}}
