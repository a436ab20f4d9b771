"""Two provider processes sharing one real Redis, behind one issuer, as replicas behind a load balancer.

Both replicas get the same issuer, signing keys, users and clients; each listens on a port of its own
(``support.replica``). The Redis URL comes from ``KUBEOIDC_TEST_REDIS_URL``: without it these tests are
skipped on a workstation and fail in CI (``CI`` set), as the storage suite's Redis cases do. Between
tests, the provider's keys (its ``kubeoidc:`` prefix) are deleted from that Redis database, and only
those: sessions, codes, consents and login counters never leak from one test into the next.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
import redis

import kubeoidc_contract as contract
from kubeoidc_provider.storage.redis import DEFAULT_PREFIX
from support.client_keys import ClientKey, KeyClient
from support.live import free_port
from support.objects import client_objects
from support.provider import users_yaml
from support.replica import write_config
from support.replica_process import start_replica, stop_replica, wait_ready
from support.replicas_flow import Browser, Client, RelyingParty, Replica

REDIS_URL_ENV = "KUBEOIDC_TEST_REDIS_URL"
#: Few attempts, so the throttling test reaches the limit quickly; the other tests never fail a login.
LOGIN_ATTEMPTS = 3


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def redis_url() -> str:
    """The test Redis's URL; skip (workstation) or fail (CI) when there is none."""
    url = os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        if in_ci():
            pytest.fail(f"{REDIS_URL_ENV} is not set, but CI is: the replica tests would go untested")
        pytest.skip(f"{REDIS_URL_ENV} is not set: start a redis-server and point it there to run them")
    return url


@pytest.fixture(scope="module")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def _delete_provider_keys(client: redis.Redis) -> None:
    keys = list(client.scan_iter(match=DEFAULT_PREFIX + "*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def clean_redis(redis_client: redis.Redis) -> Iterator[None]:
    _delete_provider_keys(redis_client)
    yield
    _delete_provider_keys(redis_client)


@pytest.fixture(scope="module")
def issuer() -> str:
    """The load balancer's address: the issuer of both replicas. Nothing listens there."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def web_client() -> Client:
    return Client(
        client_id=f"web-app-{secrets.token_hex(4)}",
        secret=secrets.token_urlsafe(32),
        redirect_uri="https://web-app.example.com/callback",
    )


@pytest.fixture(scope="module")
def key_client() -> KeyClient:
    """A ``private_key_jwt`` client of both replicas, with its key."""
    return KeyClient(f"ledger-{secrets.token_hex(4)}", ClientKey("ES256"))


@pytest.fixture(scope="module")
def replicas(
    redis_url: str,
    issuer: str,
    web_client: Client,
    key_client: KeyClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Replica, Replica]]:
    """Replicas A and B: same issuer, keys, users, clients and Redis; each its own port and process."""
    folder = tmp_path_factory.mktemp("replicas")
    objects = client_objects(
        "web-app",
        client_id=web_client.client_id,
        secret=web_client.secret,
        redirect_uris=[web_client.redirect_uri],
        issuer=issuer,
    )
    ledger = client_objects(
        "ledger",
        client_id=key_client.client_id,
        secret=None,
        redirect_uris=[],
        grant_types=["client_credentials"],
        scopes=["ledger:read"],
        auth_method=contract.PRIVATE_KEY_JWT_AUTH_METHOD,
        issuer=issuer,
    )
    ledger[0]["spec"]["jwks"] = {"keys": [key_client.key.public_jwk()]}
    users = users_yaml()
    started: list[Replica] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            config = write_config(
                folder / f"replica-{name}.json",
                issuer=issuer,
                port=port,
                storage_url=redis_url,
                clients=[objects, ledger],
                users=users,
                settings={"login_attempts": LOGIN_ATTEMPTS},
            )
            started.append(start_replica(name.upper(), config, port))
        for replica in started:
            wait_ready(replica)
        yield started[0], started[1]
    finally:
        for replica in started:
            stop_replica(replica)


@pytest.fixture
def browser(issuer: str) -> Iterator[Browser]:
    browser = Browser(issuer)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def rp(web_client: Client) -> Iterator[RelyingParty]:
    relying_party = RelyingParty(web_client)
    try:
        yield relying_party
    finally:
        relying_party.close()
