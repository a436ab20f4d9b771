"""Back-channel logout on session expiry, with two replicas sharing Redis: the clients of an expired
session get their logout token exactly once, whichever replica sweeps; an extended session is not ended.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid

import pytest

from kubeoidc_provider.backchannel import EXPIRY_BUCKET, BackchannelLogout
from kubeoidc_provider.keys import KeySet
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.signing import SigningKeys
from kubeoidc_provider.state import State
from kubeoidc_provider.storage.redis import RedisStorage
from support.backchannel_receiver import backchannel_receiver, verify_logout_token
from support.provider import ISSUER, register, signing_jwks

pytestmark = pytest.mark.redis

REDIS_URL_ENV = "KUBEOIDC_TEST_REDIS_URL"


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{REDIS_URL_ENV} is not set, but CI is: expiry across replicas would go untested")
        pytest.skip(f"{REDIS_URL_ENV} is not set: start a redis-server and point it there")
    return url


async def test_an_expired_session_gets_its_logout_tokens_once_across_replicas(redis_url: str) -> None:
    with backchannel_receiver() as receiver:
        registry = ClientRegistry()
        registry.mark_ready()
        registered = register(registry, "expiring")
        oidcclient = dict(registered.objects[0])
        oidcclient["spec"] = {**oidcclient["spec"], "backchannelLogoutURI": f"{receiver.url}/expiring"}
        registry.upsert_oidcclient(oidcclient)
        keys = KeySet.from_jwks(signing_jwks())
        prefix = f"kubeoidc-test:{uuid.uuid4().hex}:"
        replicas = [
            BackchannelLogout(
                issuer=ISSUER,
                signing=SigningKeys(ISSUER, keys),
                registry=registry,
                state=State(RedisStorage.from_url(redis_url, prefix=prefix)),
            )
            for _ in range(2)
        ]
        first, second = replicas
        now = int(time.time())
        expires_at = now + 5
        # Two sessions signed in to the client, filed by different replicas; the second one is then
        # extended (its user signed in again), so only the first one is over at expiry.
        await first.state.add_session_client("ending", "alice", registered.client_id, 4000)
        await first.session_started("ending", expires_at)
        await second.state.add_session_client("extended", "bob", registered.client_id, 4000)
        await second.session_started("extended", expires_at)
        await second.session_started("extended", expires_at + 3600)

        await first.sweep(now)  # nothing is due yet
        later = expires_at + 2 * EXPIRY_BUCKET
        await asyncio.gather(first.sweep(later), second.sweep(later))
        for replica in replicas:
            await replica.close()  # waits for the deliveries under way
            await replica.state.storage.close()

        posts = receiver.posts_to("/expiring")
        assert len(posts) == 1
        claims = verify_logout_token(
            posts[0].form["logout_token"][0],
            json.loads(keys.public_jwks_bytes),
            issuer=ISSUER,
            audience=registered.client_id,
        )
        assert claims["sid"] == "ending"
        assert claims["sub"] == "alice"
