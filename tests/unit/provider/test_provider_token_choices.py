"""Each client's token choices: the algorithm of its ID and access tokens, and JWT or opaque access tokens.

An opaque access token is a random value whose claims the state store keeps under its SHA-256; it works
wherever a JWT access token does (userinfo, introspection, revocation). A client naming an algorithm the
provider has no key for is not served at all, rather than failing at request time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from kubeoidc_contract.jwks import SIGNING_ALGS
from kubeoidc_provider.context import Provider
from kubeoidc_provider.keys import KeySet, generate_jwks
from kubeoidc_provider.storage.memory import MemoryStorage
from kubeoidc_provider.tokens import ACCESS_TOKEN_TYP
from support.provider import RegisteredClient, register, signing_jwks
from support.provider_flow import Browser, RelyingParty, bearer, sign_in_for_code, sign_in_for_tokens

ALICE = "7b0c2f6e-alice"


def header_of(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return header


def web_client(provider: Provider, name: str, **spec: Any) -> RegisteredClient:
    return register(provider.registry, name, spec_fields=spec)


def machine_client(provider: Provider, name: str, **spec: Any) -> RegisteredClient:
    return register(
        provider.registry,
        name,
        grant_types=["client_credentials"],
        redirect_uris=[],
        scopes=["invoices:read"],
        spec_fields=spec,
    )


# --- algorithms ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_id_and_access_tokens_are_signed_with_the_algorithms_the_client_names(
    provider: Provider, http: TestClient, browser: Browser, alg: str
) -> None:
    client = web_client(provider, "ec-app", idTokenSignedResponseAlg=alg, accessTokenSignedResponseAlg=alg)

    tokens = sign_in_for_tokens(browser, RelyingParty(http, client))

    keys = provider.keys
    id_header, id_claims = keys.verify_with_header(tokens["id_token"], typ="JWT")
    access_header, _ = keys.verify_with_header(tokens["access_token"], typ=ACCESS_TOKEN_TYP)
    assert (id_header["alg"], access_header["alg"]) == (alg, alg)
    assert id_header["kid"] == keys.signing_kids[alg]
    # OIDC Core §3.1.3.6: at_hash with the hash of the ID token's own algorithm (SHA-512 for Ed25519).
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(tokens["access_token"].encode()).digest()
    assert id_claims["at_hash"] == base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).json()["sub"] == ALICE


def test_id_and_access_token_algorithms_are_chosen_apart(
    provider: Provider, http: TestClient, browser: Browser
) -> None:
    client = web_client(provider, "mixed-app", idTokenSignedResponseAlg="EdDSA")

    tokens = sign_in_for_tokens(browser, RelyingParty(http, client))

    assert header_of(tokens["id_token"])["alg"] == "EdDSA"
    assert header_of(tokens["access_token"])["alg"] == "RS256"  # the key set's default


@pytest.mark.parametrize("alg", SIGNING_ALGS)
def test_client_credentials_tokens_are_signed_with_the_clients_algorithm(
    provider: Provider, http: TestClient, alg: str
) -> None:
    client = machine_client(provider, "billing", accessTokenSignedResponseAlg=alg)
    rp = RelyingParty(http, client)

    response = rp.token({"grant_type": "client_credentials", "scope": "invoices:read"})

    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert header_of(token)["alg"] == alg
    assert rp.introspect(token).json()["active"] is True


@pytest.mark.parametrize("alg", SIGNING_ALGS)
def test_signed_userinfo_uses_the_clients_algorithm(
    provider: Provider, http: TestClient, browser: Browser, alg: str
) -> None:
    client = web_client(provider, "jwt-userinfo", userinfoSignedResponseAlg=alg)
    tokens = sign_in_for_tokens(browser, RelyingParty(http, client))

    response = http.get("/userinfo", headers=bearer(tokens["access_token"]))

    assert response.headers["content-type"] == "application/jwt"
    header, claims = provider.keys.verify_with_header(response.text)
    assert header["alg"] == alg
    assert (claims["sub"], claims["aud"]) == (ALICE, client.client_id)


def test_discovery_advertises_every_algorithm_the_key_set_signs_with(http: TestClient) -> None:
    document = http.get("/.well-known/openid-configuration").json()

    assert document["id_token_signing_alg_values_supported"] == ["RS256", "ES256", "EdDSA"]
    assert document["userinfo_signing_alg_values_supported"] == ["RS256", "ES256", "EdDSA"]


# --- an algorithm without a key --------------------------------------------------------------------


@pytest.fixture
def rs256_only() -> KeySet:
    return KeySet.from_jwks(generate_jwks("RS256"))


@pytest.mark.parametrize(
    "field", ["idTokenSignedResponseAlg", "accessTokenSignedResponseAlg", "userinfoSignedResponseAlg"]
)
def test_a_client_naming_an_algorithm_the_provider_has_no_key_for_is_not_served(
    make_provider: Callable[..., Provider],
    rs256_only: KeySet,
    field: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = make_provider(keys=rs256_only)

    refused = web_client(provider, "wants-ec", **{field: "ES256"})
    served = web_client(provider, "wants-rsa", **{field: "RS256"})

    assert provider.registry.get(refused.client_id) is None
    assert provider.registry.get(served.client_id) is not None
    assert "default/wants-ec is not served: it asks for ES256" in caplog.text
    document = json.loads(provider.signing.discovery)
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]


def test_an_opaque_client_naming_an_access_token_algorithm_without_a_key_is_served(
    make_provider: Callable[..., Provider], rs256_only: KeySet
) -> None:
    provider = make_provider(keys=rs256_only)

    client = web_client(
        provider, "opaque-app", accessTokenFormat="opaque", accessTokenSignedResponseAlg="EdDSA"
    )

    assert provider.registry.get(client.client_id) is not None


def test_signed_userinfo_after_the_algorithms_key_is_gone_is_invalid_token_not_a_server_error(
    provider: Provider, http: TestClient, browser: Browser, rs256_only: KeySet
) -> None:
    client = web_client(provider, "jwt-userinfo", userinfoSignedResponseAlg="ES256")
    tokens = sign_in_for_tokens(browser, RelyingParty(http, client))

    # The key set changes for one without ES256 (but with the RS256 key that signed the tokens).
    rsa_only = [key for key in signing_jwks("RS256")["keys"] if key["alg"] == "RS256"]
    provider.signing.replace(KeySet.from_jwks({"keys": rsa_only}))

    response = http.get("/userinfo", headers=bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert provider.registry.get(client.client_id) is None


# --- opaque access tokens --------------------------------------------------------------------------


@pytest.fixture
def opaque(provider: Provider) -> RegisteredClient:
    return web_client(provider, "opaque-app", accessTokenFormat="opaque")


def test_an_opaque_access_token_works_at_userinfo_and_introspection(
    http: TestClient, browser: Browser, opaque: RegisteredClient
) -> None:
    rp = RelyingParty(http, opaque)
    tokens = sign_in_for_tokens(browser, rp)
    token = tokens["access_token"]

    assert "." not in token
    assert len(token) >= 43
    userinfo = http.get("/userinfo", headers=bearer(token))
    assert userinfo.status_code == 200
    assert userinfo.json()["email"] == "alice@example.com"
    introspection = rp.introspect(token).json()
    assert introspection["active"] is True
    assert (introspection["sub"], introspection["client_id"]) == (ALICE, opaque.client_id)
    assert introspection["token_type"] == "Bearer"
    assert introspection["scope"] == "email openid profile"


def test_a_revoked_opaque_access_token_is_refused_everywhere(
    http: TestClient, browser: Browser, opaque: RegisteredClient
) -> None:
    rp = RelyingParty(http, opaque)
    token = sign_in_for_tokens(browser, rp)["access_token"]

    assert rp.revoke(token).status_code == 200

    assert rp.introspect(token).json() == {"active": False}
    assert http.get("/userinfo", headers=bearer(token)).status_code == 401


def test_an_unknown_opaque_value_is_invalid_token(http: TestClient) -> None:
    response = http.get("/userinfo", headers=bearer("x" * 43))

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_the_state_keeps_the_opaque_tokens_hash_never_the_token(
    provider: Provider, http: TestClient, browser: Browser, opaque: RegisteredClient
) -> None:
    token = sign_in_for_tokens(browser, RelyingParty(http, opaque))["access_token"]

    storage = provider.state.storage
    assert isinstance(storage, MemoryStorage)
    stored = asyncio.run(storage.get("access_token", hashlib.sha256(token.encode()).hexdigest()))
    assert stored is not None
    assert stored["sub"] == ALICE
    # Keys and stored values alike: the token itself is nowhere in the store.
    assert token not in repr(vars(storage))


def test_an_opaque_client_credentials_token_signs_nothing_and_introspects(
    provider: Provider, http: TestClient
) -> None:
    client = machine_client(provider, "billing", accessTokenFormat="opaque")
    rp = RelyingParty(http, client)

    response = rp.token({"grant_type": "client_credentials", "scope": "invoices:read"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert "." not in body["access_token"]
    assert (body["token_type"], body["scope"]) == ("Bearer", "invoices:read")
    introspection = rp.introspect(body["access_token"]).json()
    assert introspection["active"] is True
    assert introspection["sub"] == f"client:{client.client_id}"


# --- the token endpoint's direct client_credentials path -------------------------------------------


@pytest.mark.parametrize("token_format", ["jwt", "opaque"])
def test_a_plain_client_credentials_request_gets_the_answer_authlibs_path_gives(
    provider: Provider, http: TestClient, token_format: str
) -> None:
    client = machine_client(provider, "billing", accessTokenFormat=token_format)
    rp = RelyingParty(http, client)
    plain = {"grant_type": "client_credentials", "scope": "invoices:read"}

    direct = rp.token(plain)
    # A body client_id equal to the Basic one is tolerated, and sends the request through Authlib.
    through_authlib = rp.token({**plain, "client_id": client.client_id})

    for response in (direct, through_authlib):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert (response.headers["cache-control"], response.headers["pragma"]) == ("no-store", "no-cache")
    assert (
        list(direct.json())
        == list(through_authlib.json())
        == ["access_token", "token_type", "expires_in", "scope"]
    )
    introspected = [rp.introspect(r.json()["access_token"]).json() for r in (direct, through_authlib)]
    assert introspected[0].keys() == introspected[1].keys()
    assert {k: v for k, v in introspected[0].items() if k not in ("iat", "exp", "jti")} == {
        k: v for k, v in introspected[1].items() if k not in ("iat", "exp", "jti")
    }


def test_a_wrong_secret_keeps_authlibs_refusal(provider: Provider, http: TestClient) -> None:
    client = machine_client(provider, "billing", accessTokenSignedResponseAlg="ES256")
    rp = RelyingParty(http, client)

    response = rp.token({"grant_type": "client_credentials", "scope": "invoices:read"}, secret="wrong")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("asked", ["invoices:read invoices:write", "openid invoices:read", "invoices:write"])
def test_the_granted_scope_is_the_same_with_or_without_the_direct_path(
    provider: Provider, http: TestClient, asked: str
) -> None:
    client = machine_client(provider, "billing", accessTokenSignedResponseAlg="ES256")
    rp = RelyingParty(http, client)
    plain = {"grant_type": "client_credentials", "scope": asked}

    direct = rp.token(plain).json()
    through_authlib = rp.token({**plain, "client_id": client.client_id}).json()

    assert direct.get("scope") == through_authlib.get("scope")
    assert direct.keys() == through_authlib.keys()


# --- code exchanges spent on the loop ------------------------------------------------------------


def code_only_client(provider: Provider, **spec: Any) -> RegisteredClient:
    return register(provider.registry, "code-only", grant_types=["authorization_code"], spec_fields=spec)


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_code_exchange_answered_without_waiting_still_refuses_a_replay_and_revokes_its_tokens(
    provider: Provider, http: TestClient, browser: Browser, alg: str
) -> None:
    client = code_only_client(provider, idTokenSignedResponseAlg=alg, accessTokenFormat="opaque")
    rp = RelyingParty(http, client)
    request, code = sign_in_for_code(browser, rp)

    first = rp.exchange(request, code)
    assert first.status_code == 200, first.text
    assert header_of(first.json()["id_token"])["alg"] == alg
    token = first.json()["access_token"]
    assert http.get("/userinfo", headers=bearer(token)).status_code == 200

    replay = rp.exchange(request, code)

    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    assert http.get("/userinfo", headers=bearer(token)).status_code == 401


def test_a_code_presented_with_a_wrong_secret_is_not_spent(
    provider: Provider, http: TestClient, browser: Browser
) -> None:
    client = code_only_client(provider, idTokenSignedResponseAlg="EdDSA")
    rp = RelyingParty(http, client)
    request, code = sign_in_for_code(browser, rp)

    wrong = rp.post(
        "/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.redirect_uri,
            "code_verifier": request.verifier or "",
        },
        secret="not-the-secret",
    )
    assert wrong.status_code == 401
    right = rp.exchange(request, code)

    assert right.status_code == 200, right.text
