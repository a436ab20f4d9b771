"""The client registry's join rule, rotation, deletion and re-list, fed with plain dicts."""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import logging
import time
import tracemalloc
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import kubeoidc_contract as contract
from kubeoidc_provider import registry as registry_module
from kubeoidc_provider.registration import Client
from kubeoidc_provider.registry import ClientRegistry

NOW = time.time()


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def oidcclient(
    name: str = "app",
    *,
    namespace: str = "team-a",
    uid: str = "uid-app",
    client_id: str | None = "cid-app",
    secret_name: str | None = None,
    **spec: Any,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if client_id is not None:
        status["clientID"] = client_id
        status["secretName"] = secret_name or f"{name}-oidc"
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.KIND,
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "spec": {"redirectURIs": ["https://app.example.com/callback"], **spec},
        "status": status,
    }


def owner_ref(
    owner_uid: str = "uid-app",
    *,
    name: str = "app",
    controller: bool | None = True,
    kind: str = contract.KIND,
    api_version: str = contract.API_VERSION,
) -> dict[str, Any]:
    ref: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "name": name, "uid": owner_uid}
    if controller is not None:
        ref["controller"] = controller
    return ref


def secret(
    name: str = "app-oidc",
    *,
    namespace: str = "team-a",
    client_id: str = "cid-app",
    client_secret: str | None = "s3cret-current",
    owners: list[dict[str, Any]] | None = None,
    labelled: bool = True,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    data = {contract.CLIENT_ID_KEY: b64(client_id), contract.ISSUER_KEY: b64("https://id.example.com")}
    if client_secret is not None:
        data[contract.CLIENT_SECRET_KEY] = b64(client_secret)
    labels = {contract.MANAGED_BY_LABEL: contract.MANAGER, contract.CLIENT_LABEL: "app"} if labelled else {}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-secret-{namespace}-{name}",
            "labels": labels,
            "annotations": annotations or {},
            "ownerReferences": [owner_ref()] if owners is None else owners,
        },
        "data": data,
    }


def grace_annotations(previous: str, expires: datetime) -> dict[str, str]:
    return {
        contract.PREVIOUS_SECRET_HASH_ANNOTATION: hashlib.sha256(previous.encode()).hexdigest(),
        contract.PREVIOUS_SECRET_EXPIRES_ANNOTATION: expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def served(*objects: dict[str, Any]) -> ClientRegistry:
    registry = ClientRegistry()
    for obj in objects:
        if obj["kind"] == contract.KIND:
            registry.upsert_oidcclient(obj)
        else:
            registry.upsert_secret(obj)
    return registry


# -- the join rule ------------------------------------------------------------------------------


def test_client_is_served_when_its_secret_is_controller_owned_and_the_ids_match() -> None:
    registry = served(oidcclient(), secret())

    client = registry.get("cid-app")
    assert client is not None
    assert client.check_secret("s3cret-current", NOW)
    assert not client.check_secret("s3cret-wrong", NOW)
    assert len(registry) == 1


def test_events_may_arrive_in_any_order() -> None:
    registry = served(secret(), oidcclient())

    assert registry.get("cid-app") is not None


def test_registration_comes_from_the_spec() -> None:
    registry = served(
        oidcclient(
            displayName="The App",
            description="Does things",
            url="https://app.example.com",
            redirectURIs=["https://app.example.com/cb", "http://127.0.0.1:8000/cb"],
            postLogoutRedirectURIs=["https://app.example.com/bye"],
            grantTypes=["authorization_code", "refresh_token"],
            tokenEndpointAuthMethod="client_secret_post",
            scopes=["openid", "groups"],
        ),
        secret(),
    )

    client = registry.get("cid-app")
    assert client is not None
    assert (client.namespace, client.name, client.uid) == ("team-a", "app", "uid-app")
    assert (client.display_name, client.description, client.url) == (
        "The App",
        "Does things",
        "https://app.example.com",
    )
    assert client.redirect_uris == ("https://app.example.com/cb", "http://127.0.0.1:8000/cb")
    assert client.post_logout_redirect_uris == ("https://app.example.com/bye",)
    assert client.grant_types == {"authorization_code", "refresh_token"}
    assert client.token_endpoint_auth_method == "client_secret_post"
    assert client.scopes == ("openid", "groups")
    assert not client.public


def test_registration_applies_the_crd_defaults_when_fields_are_absent() -> None:
    registry = served(oidcclient(), secret())

    client = registry.get("cid-app")
    assert client is not None
    assert client.display_name == "app"
    assert client.grant_types == {"authorization_code"}
    assert client.token_endpoint_auth_method == "client_secret_basic"
    assert client.scopes == ("openid", "profile", "email")


@pytest.mark.parametrize(
    ("display_name", "description", "url"),
    [
        ("12:34 Ops", "a: b: c", "https://ops.example.com/a:b"),
        ("", "Only a description", ""),
        ("Ünïcödé 名前", "", "https://例え.jp"),
        ("3:", ":4", ":"),
    ],
)
def test_page_texts_come_back_as_written(display_name: str, description: str, url: str) -> None:
    spec = {"displayName": display_name, "description": description, "url": url}
    client = served(oidcclient(**spec), secret()).get("cid-app")

    assert client is not None
    assert (client.display_name, client.description, client.url) == (display_name or "app", description, url)


def test_clients_configured_alike_share_one_profile_until_none_holds_it() -> None:
    registry = served(
        oidcclient(scopes=["openid", "api:read"]),
        secret(),
        oidcclient("other", uid="uid-other", client_id="cid-other", scopes=["openid", "api:read"]),
        secret("other-oidc", client_id="cid-other", owners=[owner_ref("uid-other", name="other")]),
        oidcclient("third", uid="uid-third", client_id="cid-third", scopes=["openid"]),
        secret("third-oidc", client_id="cid-third", owners=[owner_ref("uid-third", name="third")]),
    )
    app, other, third = (registry.get(cid) for cid in ("cid-app", "cid-other", "cid-third"))
    assert app is not None
    assert other is not None
    assert third is not None
    assert app.profile is other.profile
    assert third.profile is not app.profile
    assert third.scopes == ("openid",)

    shared = weakref.ref(app.profile)
    del app, other
    registry.delete_oidcclient(oidcclient())
    registry.delete_oidcclient(oidcclient("other", uid="uid-other", client_id="cid-other"))
    gc.collect()
    assert shared() is None  # a deleted configuration leaves nothing behind


def test_redirect_uris_are_compared_exactly() -> None:
    client = served(oidcclient(), secret()).get("cid-app")

    assert client is not None
    assert client.check_redirect_uri("https://app.example.com/callback")
    assert not client.check_redirect_uri("https://app.example.com/callback/")
    assert not client.check_redirect_uri("https://app.example.com/callback?x=1")
    assert not client.check_redirect_uri("HTTPS://app.example.com/callback")


def test_forged_labelled_secret_with_a_copied_client_id_registers_nothing() -> None:
    forged = secret("forged", namespace="team-b", client_secret="attacker", owners=[])
    registry = served(oidcclient(), forged)
    assert registry.get("cid-app") is None

    registry.upsert_secret(secret())
    client = registry.get("cid-app")
    assert client is not None
    assert not client.check_secret("attacker", NOW)


def test_forged_secret_named_as_the_status_says_but_not_owned_registers_nothing() -> None:
    registry = served(oidcclient(), secret(client_secret="attacker", owners=[]))

    assert registry.get("cid-app") is None


def test_secret_owned_by_another_uid_registers_nothing() -> None:
    registry = served(oidcclient(), secret(owners=[owner_ref("uid-someone-else")]))

    assert registry.get("cid-app") is None


def test_secret_of_a_recreated_oidcclient_registers_nothing_until_owned_by_the_new_uid() -> None:
    registry = served(oidcclient(), secret())
    registry.upsert_oidcclient(oidcclient(uid="uid-app-2"))
    assert registry.get("cid-app") is None

    registry.upsert_secret(secret(owners=[owner_ref("uid-app-2")]))
    assert registry.get("cid-app") is not None


@pytest.mark.parametrize("controller", [False, None])
def test_secret_with_a_non_controller_owner_registers_nothing(controller: bool | None) -> None:
    registry = served(oidcclient(), secret(owners=[owner_ref(controller=controller)]))

    assert registry.get("cid-app") is None


@pytest.mark.parametrize(
    ("kind", "api_version"),
    [
        ("Deployment", "apps/v1"),
        (contract.KIND, f"{contract.GROUP}/v999"),
        (contract.KIND, "evil.io/v1alpha1"),
    ],
)
def test_secret_controlled_by_another_kind_registers_nothing(kind: str, api_version: str) -> None:
    registry = served(oidcclient(), secret(owners=[owner_ref(kind=kind, api_version=api_version)]))

    assert registry.get("cid-app") is None


def test_only_the_controller_reference_counts() -> None:
    owners = [owner_ref(controller=False), owner_ref("uid-other", kind="Deployment", api_version="apps/v1")]
    registry = served(oidcclient(), secret(owners=owners))

    assert registry.get("cid-app") is None


def test_secret_in_another_namespace_registers_nothing() -> None:
    registry = served(oidcclient(), secret(namespace="team-b"))

    assert registry.get("cid-app") is None


def test_secret_not_named_in_the_status_registers_nothing() -> None:
    registry = served(oidcclient(), secret("other-name"))

    assert registry.get("cid-app") is None


def test_client_id_mismatch_registers_nothing() -> None:
    registry = served(oidcclient(), secret(client_id="cid-other"))

    assert registry.get("cid-app") is None
    assert registry.get("cid-other") is None


def test_secret_without_the_manager_label_registers_nothing() -> None:
    registry = served(oidcclient(), secret(labelled=False))

    assert registry.get("cid-app") is None


def test_secret_losing_its_owner_reference_unregisters_the_client() -> None:
    registry = served(oidcclient(), secret())
    registry.upsert_secret(secret(owners=[]))

    assert registry.get("cid-app") is None


def test_oidcclient_without_a_client_id_in_status_is_not_served() -> None:
    registry = served(oidcclient(client_id=None), secret())

    assert len(registry) == 0


def test_two_oidcclients_claiming_one_client_id_register_neither(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=registry_module.__name__)
    twin = oidcclient("twin", uid="uid-twin")
    registry = served(oidcclient(), secret(), twin, secret("twin-oidc", owners=[owner_ref("uid-twin")]))

    assert registry.get("cid-app") is None
    assert "team-a/app" in caplog.text
    assert "team-a/twin" in caplog.text
    assert "s3cret-current" not in caplog.text

    registry.delete_oidcclient(twin)
    assert registry.get("cid-app") is not None


def test_public_client_keeps_no_secret_hashes() -> None:
    registry = served(
        oidcclient(public=True, tokenEndpointAuthMethod="none"),
        secret(client_secret=None),
    )

    client = registry.get("cid-app")
    assert client is not None
    assert client.public
    assert client.secret_hashes == ()
    assert client.token_endpoint_auth_method == "none"
    assert not client.check_secret("", NOW)


def test_public_client_ignores_a_stray_secret() -> None:
    registry = served(oidcclient(public=True), secret(client_secret="leftover"))

    client = registry.get("cid-app")
    assert client is not None
    assert client.secret_hashes == ()
    assert not client.check_secret("leftover", NOW)


def test_confidential_client_without_a_secret_is_not_served() -> None:
    registry = served(oidcclient(), secret(client_secret=None))

    assert registry.get("cid-app") is None


# -- rotation -----------------------------------------------------------------------------------


def test_rotated_secret_refuses_the_previous_one_at_once() -> None:
    registry = served(oidcclient(), secret())
    before = registry.get("cid-app")

    registry.upsert_secret(secret(client_secret="s3cret-rotated"))

    client = registry.get("cid-app")
    assert client is not None
    assert not client.check_secret("s3cret-current", NOW)
    assert client.check_secret("s3cret-rotated", NOW)
    assert before is not None
    assert before.check_secret("s3cret-current", NOW)  # a served entry never changes under a reader


def test_grace_period_accepts_the_previous_secret_until_it_expires() -> None:
    expires = datetime.fromtimestamp(NOW, tz=UTC) + timedelta(minutes=10)
    rotated = secret(client_secret="s3cret-rotated", annotations=grace_annotations("s3cret-current", expires))
    registry = served(oidcclient(), rotated)

    client = registry.get("cid-app")
    assert client is not None
    assert client.check_secret("s3cret-current", NOW)
    assert client.check_secret("s3cret-rotated", NOW)
    later = expires.timestamp() + 1
    assert not client.check_secret("s3cret-current", later)
    assert client.check_secret("s3cret-rotated", later)


@pytest.mark.parametrize("expires", ["", "tomorrow", "2999-13-01T00:00:00Z"])
def test_previous_secret_without_a_valid_expiry_is_refused(expires: str) -> None:
    annotations = grace_annotations("s3cret-current", datetime.now(tz=UTC))
    annotations[contract.PREVIOUS_SECRET_EXPIRES_ANNOTATION] = expires
    registry = served(oidcclient(), secret(client_secret="s3cret-rotated", annotations=annotations))

    client = registry.get("cid-app")
    assert client is not None
    assert not client.check_secret("s3cret-current", NOW)


def test_check_secret_compares_every_hash_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    expires = datetime.fromtimestamp(NOW, tz=UTC) + timedelta(minutes=10)
    rotated = secret(client_secret="s3cret-rotated", annotations=grace_annotations("s3cret-current", expires))
    client = served(oidcclient(), rotated).get("cid-app")
    assert client is not None
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", counting)  # the module the registry calls it from
    assert client.check_secret("s3cret-rotated", NOW)
    assert len(calls) == 2


def test_client_repr_shows_no_secret_hash() -> None:
    client = served(oidcclient(), secret()).get("cid-app")

    assert client is not None
    assert hashlib.sha256(b"s3cret-current").digest() not in repr(client).encode()
    assert "secret_hashes" not in repr(client)


# -- deletion and re-list -----------------------------------------------------------------------


def test_deleting_the_secret_removes_the_client() -> None:
    registry = served(oidcclient(), secret())
    registry.delete_secret(secret())

    assert registry.get("cid-app") is None


def test_deleting_the_oidcclient_removes_the_client() -> None:
    registry = served(oidcclient(), secret())
    registry.delete_oidcclient(oidcclient())

    assert registry.get("cid-app") is None
    assert len(registry) == 0


def test_changing_the_client_id_in_status_moves_the_client() -> None:
    registry = served(oidcclient(), secret())
    registry.upsert_oidcclient(oidcclient(client_id="cid-new"))
    assert registry.get("cid-app") is None
    assert registry.get("cid-new") is None  # the Secret still says cid-app

    registry.upsert_secret(secret(client_id="cid-new"))
    assert registry.get("cid-new") is not None


def test_replace_all_drops_objects_missing_from_the_lists() -> None:
    registry = served(oidcclient(), secret())
    other = oidcclient("other", uid="uid-other", client_id="cid-other")
    other_secret = secret("other-oidc", client_id="cid-other", owners=[owner_ref("uid-other", name="other")])

    registry.replace_all([other], [other_secret])

    assert registry.get("cid-app") is None
    assert registry.get("cid-other") is not None
    assert len(registry) == 1


def test_replace_all_of_one_kind_keeps_the_other() -> None:
    registry = served(oidcclient(), secret())

    registry.replace_all(None, [secret(client_secret="s3cret-rotated")])

    client = registry.get("cid-app")
    assert client is not None
    assert client.check_secret("s3cret-rotated", NOW)
    assert not client.check_secret("s3cret-current", NOW)

    registry.replace_all([], None)
    assert registry.get("cid-app") is None


def test_replace_all_in_one_namespace_keeps_the_others() -> None:
    b_client = oidcclient(namespace="team-b", uid="uid-b", client_id="cid-b")
    b_secret = secret(namespace="team-b", client_id="cid-b", owners=[owner_ref("uid-b")])
    registry = served(oidcclient(), secret(), b_client, b_secret)

    registry.replace_all([], [], namespace="team-a")

    assert registry.get("cid-app") is None
    assert registry.get("cid-b") is not None


def test_replace_all_ignores_labelled_but_unowned_secrets() -> None:
    registry = ClientRegistry()
    registry.replace_all([oidcclient()], [secret(owners=[]), secret("forged", namespace="team-b")])

    assert registry.get("cid-app") is None


# -- a Secret through changes of either side, once joined to its client -------------------------


def test_a_secret_serves_its_oidcclient_again_once_its_client_id_changes_back() -> None:
    registry = served(oidcclient(), secret())

    registry.upsert_oidcclient(oidcclient(client_id="cid-new"))
    assert registry.get("cid-new") is None  # the Secret still says cid-app
    assert registry.get("cid-app") is None

    registry.upsert_oidcclient(oidcclient())
    client = registry.get("cid-app")
    assert client is not None
    assert client.check_secret("s3cret-current", NOW)
    assert not client.check_secret("s3cret-rotated", NOW)


def test_a_secret_serves_its_oidcclient_again_after_a_relist_drops_and_returns_it() -> None:
    registry = served(oidcclient(), secret())

    registry.replace_all([], None)
    assert registry.get("cid-app") is None
    registry.replace_all([oidcclient()], None)

    client = registry.get("cid-app")
    assert client is not None
    assert client.check_secret("s3cret-current", NOW)


def test_a_secret_is_no_longer_used_once_its_oidcclient_names_another() -> None:
    registry = served(oidcclient(), secret())

    registry.upsert_oidcclient(oidcclient(secret_name="app-credentials"))
    assert registry.get("cid-app") is None

    registry.upsert_oidcclient(oidcclient())
    assert registry.get("cid-app") is not None


def test_a_spec_change_after_the_join_keeps_the_secret_and_serves_the_new_spec() -> None:
    registry = served(oidcclient(), secret())

    registry.upsert_oidcclient(oidcclient(redirectURIs=["https://app.example.com/new"]))

    client = registry.get("cid-app")
    assert client is not None
    assert client.redirect_uris == ("https://app.example.com/new",)
    assert client.check_secret("s3cret-current", NOW)


def test_rotations_after_the_join_accept_exactly_the_secrets_of_the_last_secret_fed() -> None:
    registry = served(oidcclient(), secret())
    expires = datetime.fromtimestamp(NOW, tz=UTC) + timedelta(minutes=10)

    registry.upsert_secret(
        secret(client_secret="s3cret-rotated", annotations=grace_annotations("s3cret-current", expires))
    )
    graced = registry.get("cid-app")
    assert graced is not None
    assert graced.check_secret("s3cret-current", NOW)
    assert graced.check_secret("s3cret-rotated", NOW)
    assert not graced.check_secret("s3cret-current", expires.timestamp() + 1)

    registry.upsert_oidcclient(oidcclient(displayName="Renamed"))  # the join again, with two digests
    renamed = registry.get("cid-app")
    assert renamed is not None
    assert renamed.check_secret("s3cret-current", NOW)
    assert not renamed.check_secret("s3cret-current", expires.timestamp() + 1)

    registry.upsert_secret(secret(client_secret="s3cret-third"))
    client = registry.get("cid-app")
    assert client is not None
    assert client.check_secret("s3cret-third", NOW)
    assert not client.check_secret("s3cret-rotated", NOW)
    assert not client.check_secret("s3cret-current", NOW)


def test_a_secret_named_otherwise_than_after_its_oidcclient_is_served_rotated_and_deleted() -> None:
    registry = served(oidcclient(secret_name="credentials"), secret("credentials"))
    client = registry.get("cid-app")
    assert client is not None
    assert client.check_secret("s3cret-current", NOW)

    registry.upsert_secret(secret("credentials", client_secret="s3cret-rotated"))
    rotated = registry.get("cid-app")
    assert rotated is not None
    assert rotated.check_secret("s3cret-rotated", NOW)
    assert not rotated.check_secret("s3cret-current", NOW)

    registry.delete_secret(secret("credentials"))
    assert registry.get("cid-app") is None


def test_a_secret_outliving_its_oidcclient_keeps_nothing_of_its_client() -> None:
    registry = served(oidcclient(scopes=["openid", "only-here"]), secret())
    client = registry.get("cid-app")
    assert client is not None
    gone = weakref.ref(client.profile)  # held by the client alone
    del client

    registry.delete_oidcclient(oidcclient())  # its Secret is collected later, by the cluster
    gc.collect()

    assert gone() is None
    registry.upsert_oidcclient(oidcclient())  # and it still answers for the Secret
    served_again = registry.get("cid-app")
    assert served_again is not None
    assert served_again.check_secret("s3cret-current", NOW)


# -- readiness, logging, memory -----------------------------------------------------------------


def test_registry_is_not_ready_until_marked() -> None:
    registry = served(oidcclient(), secret())
    assert not registry.ready

    registry.mark_ready()
    assert registry.ready


def test_feeding_never_logs_a_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    registry = served(oidcclient(), secret(), oidcclient("twin", uid="uid-twin"), secret(client_secret=None))
    registry.upsert_secret(secret())
    registry.delete_secret(secret())

    for leaked in ("s3cret-current", b64("s3cret-current"), hashlib.sha256(b"s3cret-current").hexdigest()):
        assert leaked not in caplog.text


def test_ten_thousand_clients_take_under_8_and_a_quarter_mib() -> None:
    registry = ClientRegistry()
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        for i in range(10_000):
            name, uid, cid = f"app-{i:05d}", f"0d9e5c4e-6b1a-4f7e-9a51-{i:012d}", f"kubeoidc-{i:024x}"
            registry.upsert_oidcclient(oidcclient(name, uid=uid, client_id=cid, displayName=f"App {i}"))
            registry.upsert_secret(
                secret(
                    f"{name}-oidc",
                    client_id=cid,
                    client_secret=f"{i:064x}",
                    owners=[owner_ref(uid, name=name)],
                )
            )
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(registry) == 10_000
    assert isinstance(registry.get("kubeoidc-" + f"{9_999:024x}"), Client)
    # About 0.8 KiB each, the strings themselves most of it (1.5 KiB before the records were made small,
    # 0.88 KiB while a single redirect URI was held in a tuple of its own).
    assert used - baseline < 8.25 * 1024 * 1024, f"{(used - baseline) / 2**20:.2f} MiB"


def test_check_secret_refuses_undecodable_input_without_raising() -> None:
    client = served(oidcclient(), secret()).get("cid-app")

    assert client is not None
    assert not client.check_secret("s3cret-\udcff", NOW)
