"""The signing-key schedule: published ahead, signing for a period, retired, removed; nothing twice."""

from __future__ import annotations

import asyncio
import base64
import datetime
import itertools
import json
from typing import Any

import pytest

import kubeoidc_contract as contract
from kubeoidc.local_cluster import LocalCluster
from kubeoidc_operator.keykeeper import KeyKeeper, keep_keys_forever
from kubeoidc_operator.keyring import SCHEDULE_KEY, KeyPolicy, KeyringPlan, plan_keyring

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
POLICY = KeyPolicy(
    rotation_period=datetime.timedelta(days=30), publish_ahead=DAY, retire_after=datetime.timedelta(days=2)
)


class FakeKeys:
    """Key material is irrelevant to the schedule: numbered kids."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)

    def __call__(self, alg: str) -> dict[str, Any]:
        return {"kty": "oct", "kid": f"k{next(self.counter)}", "alg": alg, "use": "sig"}


def plan(current: dict[str, Any] | None, now: datetime.datetime, make_key: FakeKeys) -> KeyringPlan:
    return plan_keyring(
        current, namespace="kubeoidc", name="signing-keys", policy=POLICY, now=now, make_key=make_key
    )


def jwks(secret: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(base64.b64decode(secret["data"][contract.SIGNING_KEYS_KEY]))
    return document


def kids(secret: dict[str, Any]) -> list[str]:
    return [key["kid"] for key in jwks(secret)["keys"]]


def walk(days: float, make_key: FakeKeys | None = None) -> dict[str, Any]:
    """The Secret after ticking every hour from T0 to ``days``, from no Secret at all."""
    make_key = make_key or FakeKeys()
    secret: dict[str, Any] | None = None
    for hour in range(int(days * 24) + 1):
        result = plan(secret, T0 + datetime.timedelta(hours=hour), make_key)
        if result.secret is not None:
            secret = result.secret
    assert secret is not None
    return secret


def test_the_first_tick_creates_one_key_that_signs() -> None:
    result = plan(None, T0, FakeKeys())

    assert result.action == "create"
    assert result.secret is not None
    assert kids(result.secret) == ["k1"]
    assert jwks(result.secret)["signing_kid"] == "k1"
    labels = result.secret["metadata"]["labels"]
    assert labels[contract.MANAGED_BY_LABEL] == contract.MANAGER
    assert labels[contract.SIGNING_KEYS_LABEL] == "true"


def test_an_unchanged_schedule_writes_nothing() -> None:
    make_key = FakeKeys()
    secret = walk(1, make_key)

    assert plan(secret, T0 + 2 * DAY, make_key).action == "none"


def test_the_next_key_is_published_ahead_and_promoted_only_at_the_end_of_the_period() -> None:
    before = walk(28.9)
    assert kids(before) == ["k1"]
    published = walk(29.1)
    assert kids(published) == ["k1", "k2"]
    assert jwks(published)["signing_kid"] == "k1"
    promoted = walk(30.1)
    assert jwks(promoted)["signing_kid"] == "k2"
    assert kids(promoted) == ["k1", "k2"]  # the retired key stays published


def test_a_retired_key_is_removed_after_retire_after() -> None:
    assert kids(walk(31.9)) == ["k1", "k2"]
    assert kids(walk(32.1)) == ["k2"]


def test_a_key_published_late_never_signs_before_it_was_published_publish_ahead() -> None:
    make_key = FakeKeys()
    secret = plan(None, T0, make_key).secret
    # The operator was down until long after the period ended.
    late = T0 + datetime.timedelta(days=40)
    published = plan(secret, late, make_key).secret
    assert published is not None
    assert jwks(published)["signing_kid"] == "k1"

    assert plan(published, late + datetime.timedelta(hours=23), make_key).action == "none"
    promoted = plan(published, late + DAY, make_key).secret
    assert promoted is not None
    assert jwks(promoted)["signing_kid"] == "k2"


def test_a_tick_repeated_at_the_same_moment_changes_nothing_more() -> None:
    make_key = FakeKeys()
    moment = T0 + datetime.timedelta(days=29, hours=1)
    secret = walk(29, make_key)
    once = plan(secret, moment, make_key).secret or secret

    assert plan(once, moment, make_key).action == "none"
    assert kids(once) == ["k1", "k2"]


def test_a_secret_of_that_name_that_is_not_ours_is_left_untouched() -> None:
    foreign = {"metadata": {"name": "signing-keys", "namespace": "kubeoidc", "labels": {}}, "data": {}}

    result = plan(foreign, T0, FakeKeys())

    assert result.action == "refuse"
    assert result.secret is None
    assert "left untouched" in (result.problem or "")


def test_an_unreadable_secret_is_refused_not_overwritten() -> None:
    broken = {
        "metadata": {"labels": {contract.SIGNING_KEYS_LABEL: "true"}},
        "data": {contract.SIGNING_KEYS_KEY: "not base64!"},
    }

    assert plan(broken, T0, FakeKeys()).action == "refuse"


@pytest.mark.parametrize("signing_kid", ["k9", None])
def test_keys_added_by_hand_are_scheduled_from_now(signing_kid: str | None) -> None:
    document = {"keys": [{"kid": "k9", "kty": "oct"}], "signing_kid": signing_kid}
    by_hand = {
        "metadata": {"labels": {contract.SIGNING_KEYS_LABEL: "true"}},
        "data": {contract.SIGNING_KEYS_KEY: base64.b64encode(json.dumps(document).encode()).decode()},
    }

    result = plan(by_hand, T0, FakeKeys())

    assert result.secret is not None
    schedule = json.loads(base64.b64decode(result.secret["data"][SCHEDULE_KEY]))
    assert schedule["k9"]["created"] == "2026-01-01T00:00:00Z"
    assert jwks(result.secret)["signing_kid"] == "k9"


def test_the_keeper_writes_the_secret_and_a_standby_replica_writes_nothing(tmp_path: Any) -> None:
    cluster = LocalCluster(tmp_path)
    keeper = KeyKeeper(cluster, "kubeoidc", "signing-keys", POLICY, clock=lambda: T0, make_key=FakeKeys())

    async def run_briefly(active: bool) -> None:
        task = asyncio.create_task(keep_keys_forever(keeper, 0.01, active=lambda: active))
        await asyncio.sleep(0.1)
        task.cancel()

    asyncio.run(run_briefly(active=False))
    assert cluster.find_secret("kubeoidc", "signing-keys") is None
    asyncio.run(run_briefly(active=True))
    secret = cluster.find_secret("kubeoidc", "signing-keys")
    assert secret is not None
    assert kids(secret) == ["k1"]
    assert keeper.tick().action == "none"


# --- one lane per algorithm --------------------------------------------------------------------------

ALL_ALGS = KeyPolicy(
    alg="RS256",
    also=("ES256", "EdDSA"),
    rotation_period=datetime.timedelta(days=30),
    publish_ahead=DAY,
    retire_after=datetime.timedelta(days=2),
)


def plan_all(current: dict[str, Any] | None, now: datetime.datetime, make_key: FakeKeys) -> KeyringPlan:
    return plan_keyring(
        current, namespace="kubeoidc", name="signing-keys", policy=ALL_ALGS, now=now, make_key=make_key
    )


def test_each_algorithm_gets_a_signing_key_of_its_own() -> None:
    result = plan_all(None, T0, FakeKeys())

    assert result.secret is not None
    document = jwks(result.secret)
    assert [(key["kid"], key["alg"]) for key in document["keys"]] == [
        ("k1", "RS256"),
        ("k2", "ES256"),
        ("k3", "EdDSA"),
    ]
    assert document["signing_kid"] == "k1"
    assert document["signing_kids"] == {"ES256": "k2", "EdDSA": "k3"}


def test_every_algorithm_rotates_on_the_schedule_and_the_default_stays_named_by_signing_kid() -> None:
    make_key = FakeKeys()
    secret: dict[str, Any] | None = None
    for hour in range(31 * 24 + 1):
        result = plan_all(secret, T0 + datetime.timedelta(hours=hour), make_key)
        secret = result.secret or secret
    assert secret is not None

    document = jwks(secret)
    algs = {key["kid"]: key["alg"] for key in document["keys"]}
    # Each lane published its next key a day ahead and promoted it at 30 days; the old ones stay
    # published (retire_after: 2 days).
    assert sorted(algs.values()) == ["ES256", "ES256", "EdDSA", "EdDSA", "RS256", "RS256"]
    assert algs[document["signing_kid"]] == "RS256"
    assert document["signing_kid"] != "k1"
    assert {alg: algs[kid] for alg, kid in document["signing_kids"].items()} == {
        "ES256": "ES256",
        "EdDSA": "EdDSA",
    }
    assert set(document["signing_kids"].values()).isdisjoint({"k2", "k3"})


def test_a_secret_of_one_algorithm_gets_the_others_added_and_keeps_its_signing_key() -> None:
    before = plan(None, T0, FakeKeys()).secret
    assert before is not None

    result = plan_all(before, T0 + DAY, FakeKeys())

    assert result.secret is not None
    document = jwks(result.secret)
    assert document["signing_kid"] == "k1"
    assert set(document["signing_kids"]) == {"ES256", "EdDSA"}
    assert len(document["keys"]) == 3
