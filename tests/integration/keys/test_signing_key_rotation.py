"""One full signing-key rotation, operator and provider together, checked as a relying party would.

The operator's key keeper ticks on a moving clock and writes the signing-keys Secret; the provider is
handed each version of it (as its watcher does) and keeps serving. At every stage, every token signed so
far still verifies against the JWKS the provider then serves, until its key is removed, which happens
only after the longest token lifetime.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any, cast

import pytest
from joserfc import jws
from joserfc.jwk import KeySet as JoseKeySet
from starlette.testclient import TestClient

from kubeoidc.local_cluster import LocalCluster
from kubeoidc_operator.keykeeper import KeyKeeper
from kubeoidc_operator.keyring import KeyPolicy
from kubeoidc_provider.signing import SecretFollower
from support.provider import ISSUER, make_app, make_provider, register

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
POLICY = KeyPolicy(
    alg="ES256",
    rotation_period=datetime.timedelta(days=30),
    publish_ahead=datetime.timedelta(days=1),
    retire_after=datetime.timedelta(days=1),
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now


def verifies(token: str, served_jwks: dict[str, Any]) -> bool:
    """Whether the token's signature verifies with the served JWKS alone (what a relying party does)."""
    try:
        jws.deserialize_compact(
            token, JoseKeySet.import_key_set(cast(Any, served_jwks)), algorithms=["ES256", "RS256"]
        )
    except Exception:
        return False
    return True


def kid_of(token: str) -> str:
    return str(jws.extract_compact(token.encode()).headers()["kid"])


@pytest.fixture
def rotation(tmp_path: Path) -> Any:
    clock = Clock()
    cluster = LocalCluster(tmp_path)
    keeper = KeyKeeper(cluster, "kubeoidc", "signing-keys", POLICY, clock=clock)
    keeper.tick()
    secret = cluster.find_secret("kubeoidc", "signing-keys")
    assert secret is not None
    provider = make_provider()
    follow = SecretFollower(provider.signing)
    follow(secret)
    machine = register(provider.registry, "reports", grant_types=["client_credentials"], redirect_uris=[])

    class Rotation:
        def advance(self, days: float) -> None:
            clock.now = T0 + datetime.timedelta(days=days)
            keeper.tick()
            current = cluster.find_secret("kubeoidc", "signing-keys")
            assert current is not None
            follow(current)  # the provider's watcher hands over each version of the Secret

        def token(self, client: TestClient) -> str:
            response = client.post(
                "/token",
                data={"grant_type": "client_credentials"},
                auth=(machine.client_id, machine.secret or ""),
            )
            assert response.status_code == 200, response.text
            return str(response.json()["access_token"])

    with TestClient(make_app(provider), base_url=ISSUER) as client:
        yield Rotation(), client


def test_tokens_signed_before_during_and_after_a_rotation_verify_against_the_served_jwks(
    rotation: Any,
) -> None:
    steps, client = rotation

    def served() -> dict[str, Any]:
        jwks: dict[str, Any] = json.loads(client.get("/jwks").content)
        return jwks

    before = steps.token(client)
    first_kid = kid_of(before)

    steps.advance(29.5)  # the next key is published, the first still signs
    during = steps.token(client)
    assert kid_of(during) == first_kid
    assert len(served()["keys"]) == 2
    assert verifies(before, served())
    assert verifies(during, served())

    steps.advance(30.5)  # the next key signs; the first stays published
    after = steps.token(client)
    assert kid_of(after) != first_kid
    assert all(verifies(token, served()) for token in (before, during, after))
    discovery = client.get("/.well-known/openid-configuration").json()
    assert discovery["id_token_signing_alg_values_supported"] == ["ES256"]

    steps.advance(31.6)  # past retire_after: the first key is gone, its tokens long expired
    assert [key["kid"] for key in served()["keys"]] == [kid_of(after)]
    assert verifies(after, served())
    assert not verifies(before, served())


def test_the_retire_period_outlasts_every_token_the_provider_signs() -> None:
    settings = make_provider().settings
    longest = max(settings.access_token_ttl, settings.id_token_ttl)

    assert datetime.timedelta(seconds=longest) <= KeyPolicy().retire_after
