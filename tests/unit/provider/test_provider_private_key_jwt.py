"""``private_key_jwt`` (OIDC Core §9, RFC 7523): clients that sign their own assertions, as a client sees it.

Keys are made here (RSA and EC); a ``jwksURI`` is served by an HTTPS server of the test's own, with a
certificate from a CA the provider is told to trust. ``tests/integration/relying_parties`` runs npm
``openid-client`` against the same checks.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from kubeoidc_provider.app import build_provider, create_app
from kubeoidc_provider.context import Provider
from kubeoidc_provider.keys import KeySet
from kubeoidc_provider.private_key_jwt import MAX_LIFETIME
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.remote_jwks import MAX_DOCUMENT, cache_lifetime
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.storage import Storage, open_storage
from kubeoidc_provider.storage.memory import MemoryStorage
from kubeoidc_provider.tokens import CLIENT_SUBJECT_PREFIX
from kubeoidc_provider.users import StaticUserDirectory
from support.client_keys import (
    JWT_BEARER,
    ClientKey,
    JwksServer,
    hmac_assertion,
    jwks_server,
    register_key_client,
)
from support.provider import ISSUER, RegisteredClient, register

TOKEN_ENDPOINT = f"{ISSUER}/token"
UNTRUSTED_KEY = "The client assertion is signed by a key this provider does not trust."


def new_provider(users: StaticUserDirectory, keys: KeySet, storage: Storage, **settings: Any) -> Provider:
    registry = ClientRegistry()
    registry.mark_ready()
    return build_provider(
        ProviderSettings(issuer=ISSUER, storage_url="memory://", **settings),
        registry=registry,
        users=users,
        keys=keys,
        storage=storage,
    )


@pytest.fixture
def provider(users: StaticUserDirectory, key_sets: Callable[[str], KeySet]) -> Provider:
    return new_provider(users, key_sets("RS256"), MemoryStorage())


@pytest.fixture
def http(provider: Provider) -> Iterator[TestClient]:
    with TestClient(create_app(provider), base_url=ISSUER) as client:
        yield client


@pytest.fixture(scope="module")
def rsa_key() -> ClientKey:
    return ClientKey("RS256")


@pytest.fixture(scope="module")
def ec_key() -> ClientKey:
    return ClientKey("ES256")


@pytest.fixture
def billing(provider: Provider, ec_key: ClientKey, rsa_key: ClientKey) -> RegisteredClient:
    return register_key_client(provider.registry, "billing", keys=[ec_key, rsa_key])


def post(http: TestClient, path: str, assertion: str, **form: str) -> Any:
    return http.post(path, data={"client_assertion_type": JWT_BEARER, "client_assertion": assertion, **form})


def client_credentials(http: TestClient, client_id: str | None, assertion: str) -> Any:
    form = {"grant_type": "client_credentials"}
    if client_id is not None:
        form["client_id"] = client_id
    return post(http, "/token", assertion, **form)


def assert_invalid_client(response: Any, description: str) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"error": "invalid_client", "error_description": description}


# Accepted ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_an_rsa_or_ec_assertion_gets_a_client_credentials_token(
    http: TestClient, billing: RegisteredClient, rsa_key: ClientKey, ec_key: ClientKey, alg: str
) -> None:
    key = rsa_key if alg == "RS256" else ec_key
    response = client_credentials(http, billing.client_id, key.assertion(billing.client_id, ISSUER))

    assert response.status_code == 200, response.text
    token = response.json()
    introspected = post(
        http, "/introspect", ec_key.assertion(billing.client_id, f"{ISSUER}/introspect"),
        token=token["access_token"], client_id=billing.client_id,
    ).json()  # fmt: skip
    assert introspected["active"] is True
    assert introspected["sub"] == CLIENT_SUBJECT_PREFIX + billing.client_id


@pytest.mark.parametrize("audience", [ISSUER, TOKEN_ENDPOINT, [TOKEN_ENDPOINT, "https://other.example"]])
def test_the_issuer_or_the_token_endpoint_is_the_audience(
    http: TestClient, billing: RegisteredClient, ec_key: ClientKey, audience: str | list[str]
) -> None:
    response = client_credentials(http, billing.client_id, ec_key.assertion(billing.client_id, audience))

    assert response.status_code == 200, response.text


def test_the_assertion_alone_names_the_client_when_client_id_is_left_out(
    http: TestClient, billing: RegisteredClient, ec_key: ClientKey
) -> None:
    response = client_credentials(http, None, ec_key.assertion(billing.client_id, ISSUER))

    assert response.status_code == 200, response.text


def test_revocation_takes_the_assertion_with_its_own_endpoint_as_audience(
    http: TestClient, billing: RegisteredClient, ec_key: ClientKey
) -> None:
    token = client_credentials(http, billing.client_id, ec_key.assertion(billing.client_id, ISSUER)).json()
    revoked = post(
        http, "/revoke", ec_key.assertion(billing.client_id, f"{ISSUER}/revoke"),
        token=token["access_token"], client_id=billing.client_id,
    )  # fmt: skip
    introspected = post(
        http, "/introspect", ec_key.assertion(billing.client_id, ISSUER), token=token["access_token"]
    )

    assert revoked.status_code == 200, revoked.text
    assert introspected.json() == {"active": False}


def test_discovery_offers_private_key_jwt_with_asymmetric_algorithms_only(http: TestClient) -> None:
    document = http.get("/.well-known/openid-configuration").json()

    for endpoint in ("token", "revocation", "introspection"):
        assert "private_key_jwt" in document[f"{endpoint}_endpoint_auth_methods_supported"]
        assert "client_secret_jwt" not in document[f"{endpoint}_endpoint_auth_methods_supported"]
        algorithms = document[f"{endpoint}_endpoint_auth_signing_alg_values_supported"]
        assert {"RS256", "ES256", "PS256", "EdDSA"} <= set(algorithms)
        assert not {alg for alg in algorithms if alg.startswith("HS") or alg == "none"}


# Refused ----------------------------------------------------------------------------------------------


def test_a_replayed_assertion_is_refused(
    http: TestClient, billing: RegisteredClient, ec_key: ClientKey
) -> None:
    assertion = ec_key.assertion(billing.client_id, ISSUER)
    assert client_credentials(http, billing.client_id, assertion).status_code == 200

    assert_invalid_client(
        client_credentials(http, billing.client_id, assertion),
        "This client assertion was used before: its jti authenticates once.",
    )


@dataclass(frozen=True)
class FromNow:
    """A time claim relative to when the assertion is made: the parameters are built at collection,
    which may be minutes before the test runs."""

    seconds: int


def at_run_time(changes: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    return {
        name: now + value.seconds if isinstance(value, FromNow) else value for name, value in changes.items()
    }


REFUSALS = [
    pytest.param(
        {"aud": "https://other-provider.example"},
        "The client assertion's audience must be this provider's issuer or its token endpoint.",
        id="wrong-aud",
    ),
    pytest.param(
        {"iat": FromNow(-200), "exp": FromNow(-100)},
        "The client assertion has expired.",
        id="expired",
    ),
    pytest.param(
        {"exp": FromNow(MAX_LIFETIME + 120)},
        f"The client assertion expires too far ahead: at most {MAX_LIFETIME} seconds from now.",
        id="exp-too-far-ahead",
    ),
    pytest.param(
        {"iat": FromNow(-MAX_LIFETIME - 60)},
        f"The client assertion lives too long: at most {MAX_LIFETIME} seconds after its iat.",
        id="life-longer-than-allowed",
    ),
    pytest.param({"exp": None}, "The client assertion has no expiry (exp).", id="no-exp"),
    pytest.param(
        {"jti": None}, "The client assertion needs a jti (a unique identifier, used once).", id="no-jti"
    ),
    pytest.param(
        {"sub": "someone-else"},
        "The client assertion's subject (sub) must be its client ID, as its iss.",
        id="iss-is-not-sub",
    ),
    pytest.param(
        {"iss": "someone-else"},
        "The client assertion's issuer is not the one this provider trusts.",
        id="iss-is-another-client",
    ),
    pytest.param({"header": {"kid": "unknown"}}, UNTRUSTED_KEY, id="unknown-kid"),
]


@pytest.mark.parametrize(("changes", "description"), REFUSALS)
def test_a_bad_assertion_is_refused_as_invalid_client(
    http: TestClient,
    billing: RegisteredClient,
    ec_key: ClientKey,
    changes: dict[str, Any],
    description: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assertion = ec_key.assertion(billing.client_id, ISSUER, **at_run_time(changes))
    with caplog.at_level(logging.DEBUG):
        response = client_credentials(http, billing.client_id, assertion)

    assert_invalid_client(response, description)
    assert assertion.split(".")[2] not in caplog.text


def test_an_assertion_signed_by_a_key_the_client_does_not_have_is_refused(
    http: TestClient, billing: RegisteredClient, ec_key: ClientKey
) -> None:
    impostor = ClientKey("ES256", kid=ec_key.kid)

    response = client_credentials(http, billing.client_id, impostor.assertion(billing.client_id, ISSUER))

    assert_invalid_client(response, "The client assertion's signature does not verify.")


def test_a_symmetric_client_secret_jwt_assertion_is_refused(
    http: TestClient, billing: RegisteredClient
) -> None:
    assertion = hmac_assertion(billing.client_id, ISSUER, "a-shared-secret-the-provider-never-holds")

    response = client_credentials(http, billing.client_id, assertion)

    assert_invalid_client(response, "The client assertion's algorithm is not accepted.")


def test_an_unsigned_assertion_is_refused(
    http: TestClient, billing: RegisteredClient, ec_key: ClientKey
) -> None:
    _, payload, _ = ec_key.assertion(billing.client_id, ISSUER).split(".")
    unsigned = f"{_b64json({'alg': 'none'})}.{payload}."

    response = client_credentials(http, billing.client_id, unsigned)

    assert_invalid_client(response, "The client assertion's algorithm is not accepted.")


def test_an_assertion_with_another_algorithm_than_the_client_names_is_refused(
    http: TestClient, provider: Provider, rsa_key: ClientKey, ec_key: ClientKey
) -> None:
    pinned = register_key_client(provider.registry, "pinned", keys=[rsa_key, ec_key], signing_alg="ES256")

    refused = client_credentials(http, pinned.client_id, rsa_key.assertion(pinned.client_id, ISSUER))
    accepted = client_credentials(http, pinned.client_id, ec_key.assertion(pinned.client_id, ISSUER))

    assert_invalid_client(refused, "The client assertion's algorithm is not accepted.")
    assert accepted.status_code == 200, accepted.text


def test_a_client_secret_client_cannot_send_an_assertion(
    http: TestClient, provider: Provider, ec_key: ClientKey
) -> None:
    secret_client = register(provider.registry, "wiki", grant_types=["client_credentials"], redirect_uris=[])

    response = client_credentials(
        http, secret_client.client_id, ec_key.assertion(secret_client.client_id, ISSUER)
    )

    assert_invalid_client(response, "This client does not authenticate with a client assertion.")


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_private_key_jwt_client_cannot_authenticate_with_a_secret(
    http: TestClient, billing: RegisteredClient, method: str
) -> None:
    form = {"grant_type": "client_credentials"}
    if method == "client_secret_basic":
        response = http.post("/token", data=form, auth=(billing.client_id, "guessed"))
    else:
        response = http.post(
            "/token", data={**form, "client_id": billing.client_id, "client_secret": "guessed"}
        )

    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


def _b64json(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# Across replicas --------------------------------------------------------------------------------------


def test_an_assertion_used_at_one_replica_is_refused_at_another_sharing_the_state_store(
    users: StaticUserDirectory, key_sets: Callable[[str], KeySet], ec_key: ClientKey, tmp_path: Path
) -> None:
    # Two providers on one SQLite file: the jti is spent in the shared store, as with Redis (the storage
    # contract tests hold every backend's counters to the same atomicity).
    url = f"sqlite:///{tmp_path / 'shared-state.db'}"
    first, second = (new_provider(users, key_sets("RS256"), open_storage(url)) for _ in range(2))
    client = register_key_client(first.registry, "billing", keys=[ec_key])
    register_key_client(second.registry, "billing", keys=[ec_key], client_id=client.client_id)
    assertion = ec_key.assertion(client.client_id, ISSUER)

    with (
        TestClient(create_app(first), base_url=ISSUER) as one,
        TestClient(create_app(second), base_url=ISSUER) as other,
    ):
        used = client_credentials(one, client.client_id, assertion)
        replayed = client_credentials(other, client.client_id, assertion)

    assert used.status_code == 200, used.text
    assert_invalid_client(replayed, "This client assertion was used before: its jti authenticates once.")


# Keys at a jwksURI ------------------------------------------------------------------------------------


@pytest.fixture
def key_server(tmp_path: Path) -> Iterator[JwksServer]:
    with jwks_server(tmp_path) as server:
        yield server


@pytest.fixture
def remote_http(
    users: StaticUserDirectory, key_sets: Callable[[str], KeySet], key_server: JwksServer
) -> Iterator[tuple[Provider, TestClient]]:
    provider = new_provider(users, key_sets("RS256"), MemoryStorage(), client_jwks_ca_file=key_server.ca_file)
    with TestClient(create_app(provider), base_url=ISSUER) as http:
        yield provider, http


def test_keys_at_a_jwks_uri_are_fetched_in_the_background_before_any_request(
    remote_http: tuple[Provider, TestClient], key_server: JwksServer, ec_key: ClientKey
) -> None:
    provider, http = remote_http
    key_server.publish(ec_key)
    client = register_key_client(provider.registry, "ledger", jwks_uri=key_server.url)

    key_server.wait_for_fetches(1)  # the background scan found the client's URI
    responses = [
        client_credentials(http, client.client_id, ec_key.assertion(client.client_id, ISSUER))
        for _ in range(3)
    ]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert key_server.fetches == 1  # cached (max-age=3600): the requests fetched nothing


def test_a_rotated_key_is_fetched_once_for_an_unknown_kid_and_early_fetches_are_rate_limited(
    remote_http: tuple[Provider, TestClient], key_server: JwksServer, ec_key: ClientKey, rsa_key: ClientKey
) -> None:
    provider, http = remote_http
    key_server.publish(ec_key)
    client = register_key_client(provider.registry, "ledger", jwks_uri=key_server.url)
    key_server.wait_for_fetches(1)

    key_server.publish(ec_key, rsa_key)  # the client rotates: a new key, published first
    rotated = client_credentials(http, client.client_id, rsa_key.assertion(client.client_id, ISSUER))
    newer = ClientKey("ES256")
    key_server.publish(newer)  # and again at once: within the rate limit, so not fetched
    too_soon = client_credentials(http, client.client_id, newer.assertion(client.client_id, ISSUER))

    assert rotated.status_code == 200, rotated.text
    assert_invalid_client(too_soon, UNTRUSTED_KEY)
    assert key_server.fetches == 2


def test_a_failed_fetch_keeps_the_keys_fetched_before(
    remote_http: tuple[Provider, TestClient], key_server: JwksServer, ec_key: ClientKey
) -> None:
    provider, http = remote_http
    key_server.publish(ec_key)
    client = register_key_client(provider.registry, "ledger", jwks_uri=key_server.url)
    key_server.wait_for_fetches(1)
    key_server.failing = True

    unknown = ClientKey("ES256")
    refused = client_credentials(http, client.client_id, unknown.assertion(client.client_id, ISSUER))
    kept = client_credentials(http, client.client_id, ec_key.assertion(client.client_id, ISSUER))

    assert key_server.fetches == 2  # the early fetch for the unknown kid was tried, and failed
    assert_invalid_client(refused, UNTRUSTED_KEY)
    assert kept.status_code == 200, kept.text


def test_a_published_key_set_holding_a_private_key_is_refused_whole(
    remote_http: tuple[Provider, TestClient], key_server: JwksServer, ec_key: ClientKey, rsa_key: ClientKey
) -> None:
    provider, http = remote_http
    key_server.keys = [ec_key.public_jwk(), rsa_key.private_jwk()]  # the client published its private key
    client = register_key_client(provider.registry, "ledger", jwks_uri=key_server.url)
    key_server.wait_for_fetches(1)

    response = client_credentials(http, client.client_id, ec_key.assertion(client.client_id, ISSUER))

    assert_invalid_client(response, UNTRUSTED_KEY)


def test_a_key_set_larger_than_the_limit_is_refused_whole(
    remote_http: tuple[Provider, TestClient], key_server: JwksServer, ec_key: ClientKey
) -> None:
    provider, http = remote_http
    # A valid set, but with a second key whose ID alone is over the limit.
    key_server.keys = [ec_key.public_jwk(), {**ClientKey("ES256").public_jwk(), "kid": "k" * MAX_DOCUMENT}]
    client = register_key_client(provider.registry, "ledger", jwks_uri=key_server.url)
    key_server.wait_for_fetches(1)

    response = client_credentials(http, client.client_id, ec_key.assertion(client.client_id, ISSUER))

    assert_invalid_client(response, UNTRUSTED_KEY)


def test_a_redirect_from_the_jwks_uri_is_not_followed(
    remote_http: tuple[Provider, TestClient], key_server: JwksServer, ec_key: ClientKey
) -> None:
    provider, http = remote_http
    key_server.publish(ec_key)
    key_server.redirecting = True  # the keys are published, but only a redirect points at them
    client = register_key_client(provider.registry, "ledger", jwks_uri=key_server.url)
    key_server.wait_for_fetches(1)

    response = client_credentials(http, client.client_id, ec_key.assertion(client.client_id, ISSUER))

    assert_invalid_client(response, UNTRUSTED_KEY)
    assert key_server.fetches == 2  # the background fetch and the early one for the kid: no third


def test_a_jwks_uri_whose_certificate_is_not_trusted_gives_no_keys(
    users: StaticUserDirectory, key_sets: Callable[[str], KeySet], key_server: JwksServer, ec_key: ClientKey
) -> None:
    provider = new_provider(users, key_sets("RS256"), MemoryStorage())  # the test's CA is not trusted
    key_server.publish(ec_key)
    client = register_key_client(provider.registry, "ledger", jwks_uri=key_server.url)

    with TestClient(create_app(provider), base_url=ISSUER) as http:
        response = client_credentials(http, client.client_id, ec_key.assertion(client.client_id, ISSUER))

    assert_invalid_client(response, UNTRUSTED_KEY)
    assert key_server.fetches == 0  # the TLS handshake failed before any request


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [("max-age=600", 600.0), ("public, max-age=5", 60.0), ("max-age=99999999", 86400.0), (None, 300.0)],
)
def test_cache_control_max_age_is_honoured_within_bounds(cache_control: str | None, seconds: float) -> None:
    assert cache_lifetime(cache_control or "", default=300.0, bounds=(60.0, 86400.0)) == seconds
