"""Discovery (OpenID Connect Discovery 1.0 §4) and the JWKS (RFC 7517): what relying parties read first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet as JoseKeySet
from starlette.testclient import TestClient

from kubeoidc_provider.context import Provider
from kubeoidc_provider.keys import KeySet
from support.provider import ISSUER, register, signing_jwks
from support.provider_flow import Browser, RelyingParty, sign_in_for_tokens

ENDPOINTS = {
    "authorization_endpoint": "/authorize",
    "token_endpoint": "/token",
    "userinfo_endpoint": "/userinfo",
    "jwks_uri": "/jwks",
    "revocation_endpoint": "/revoke",
    "introspection_endpoint": "/introspect",
    "end_session_endpoint": "/logout",
}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def test_discovery_names_the_issuer_and_every_endpoint_under_it(http: TestClient) -> None:
    document = http.get("/.well-known/openid-configuration").json()

    assert document["issuer"] == ISSUER
    for name, path in ENDPOINTS.items():
        assert document[name] == ISSUER + path


def test_every_advertised_endpoint_answers_at_its_url(http: TestClient) -> None:
    document = http.get("/.well-known/openid-configuration").json()

    for name in ENDPOINTS:
        response = http.request("OPTIONS", document[name])
        assert response.status_code != 404, name


def test_discovery_states_only_what_the_provider_supports(http: TestClient) -> None:
    document = http.get("/.well-known/openid-configuration").json()

    assert document["response_types_supported"] == ["code"]
    assert document["response_modes_supported"] == ["query", "form_post"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert sorted(document["grant_types_supported"]) == [
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
    ]
    assert sorted(document["token_endpoint_auth_methods_supported"]) == [
        "client_secret_basic",
        "client_secret_post",
        "kubernetes_service_account_jwt",
        "none",
        "private_key_jwt",
    ]
    assert sorted(document["introspection_endpoint_auth_methods_supported"]) == [
        "client_secret_basic",
        "client_secret_post",
        "kubernetes_service_account_jwt",
        "private_key_jwt",
    ]
    # The JWT assertion methods (ServiceAccount tokens, private_key_jwt) sign asymmetrically, never with
    # "none"; client_secret_jwt (HMAC of a secret the provider does not keep) is not offered.
    assert {"RS256", "ES256"} <= set(document["token_endpoint_auth_signing_alg_values_supported"])
    assert not {"none", "HS256"} & set(document["token_endpoint_auth_signing_alg_values_supported"])
    assert document["id_token_signing_alg_values_supported"] == ["RS256", "ES256", "EdDSA"]
    assert document["subject_types_supported"] == ["public"]
    assert sorted(document["prompt_values_supported"]) == ["consent", "login", "none", "select_account"]
    assert {"openid", "profile", "email", "groups", "offline_access"} <= set(document["scopes_supported"])
    assert document["request_uri_parameter_supported"] is False
    assert document["request_parameter_supported"] is False
    assert document["claims_parameter_supported"] is True
    assert document["backchannel_logout_supported"] is True
    assert document["backchannel_logout_session_supported"] is True
    assert document["frontchannel_logout_supported"] is True
    assert document["frontchannel_logout_session_supported"] is True
    # Session Management is refused on purpose (see docs/conformance.md): never advertised.
    assert "check_session_iframe" not in document
    assert document["authorization_response_iss_parameter_supported"] is True
    assert {"given_name", "family_name", "updated_at", "address", "phone_number"} <= set(
        document["claims_supported"]
    )


def test_discovery_names_the_default_signing_algorithm_of_the_key_set_first(
    make_provider: Callable[..., Provider], serve: Callable[..., Any]
) -> None:
    with serve(make_provider(alg="ES256")) as http:
        document = http.get("/.well-known/openid-configuration").json()

    assert document["id_token_signing_alg_values_supported"] == ["ES256", "RS256", "EdDSA"]


def test_discovery_is_json_that_caches_may_keep_for_a_while(http: TestClient) -> None:
    response = http.get("/.well-known/openid-configuration")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=300"


def test_discovery_may_be_read_by_a_browser_application_of_another_origin(http: TestClient) -> None:
    response = http.get("/.well-known/openid-configuration", headers={"Origin": "https://spa.example.com"})

    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


def test_discovery_of_an_issuer_with_a_path_lives_under_that_path(
    make_provider: Callable[..., Provider], serve: Callable[..., Any]
) -> None:
    issuer = "http://127.0.0.1:8080/oidc"
    with serve(make_provider(issuer=issuer)) as http:
        document = http.get(f"{issuer}/.well-known/openid-configuration").json()
        jwks = http.get(document["jwks_uri"])

    assert document["issuer"] == issuer
    assert document["token_endpoint"] == f"{issuer}/token"
    assert jwks.status_code == 200


def test_jwks_publishes_only_the_public_members_of_each_key(http: TestClient) -> None:
    response = http.get("/jwks")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwk-set+json"
    assert response.headers["cache-control"] == "public, max-age=300"
    rsa, ec, okp = response.json()["keys"]
    assert set(rsa) == {"kty", "n", "e", "kid", "use", "alg"}
    assert set(ec) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    assert set(okp) == {"kty", "crv", "x", "kid", "use", "alg"}
    for key in (rsa, ec, okp):
        assert not PRIVATE_MEMBERS & set(key)
        assert key["use"] == "sig"
    assert [key["alg"] for key in (rsa, ec, okp)] == ["RS256", "ES256", "EdDSA"]


def test_jwks_holds_the_signing_key(http: TestClient) -> None:
    published = http.get("/jwks").json()["keys"][0]
    private = signing_jwks("RS256")["keys"][0]

    assert published["kid"] == private["kid"]
    assert (published["n"], published["e"]) == (private["n"], private["e"])


@pytest.mark.parametrize(("alg", "members"), [("ES256", {"crv", "x", "y"}), ("EdDSA", {"crv", "x"})])
def test_jwks_publishes_ec_and_okp_keys_without_their_private_part(
    make_provider: Callable[..., Provider], serve: Callable[..., Any], alg: str, members: set[str]
) -> None:
    with serve(make_provider(alg=alg)) as http:
        (key,) = [key for key in http.get("/jwks").json()["keys"] if key["alg"] == alg]

    assert set(key) == {"kty", "kid", "use", "alg"} | members
    assert key["alg"] == alg


def test_an_id_token_verifies_against_the_published_jwks(
    http: TestClient, browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)
    key_set = JoseKeySet.import_key_set(http.get("/jwks").json())

    token = jwt.decode(tokens["id_token"], key_set, algorithms=["RS256"])

    assert token.header["kid"] == key_set.keys[0].kid
    assert token.claims["iss"] == ISSUER
    assert token.claims["aud"] == web_rp.client_id


def test_during_a_key_rotation_both_keys_are_published_and_old_tokens_stay_valid(
    make_provider: Callable[..., Provider], serve: Callable[..., Any]
) -> None:
    old, new = signing_jwks("RS256")["keys"][0], signing_jwks("ES256")["keys"][0]
    billing: dict[str, Any] = {
        "grant_types": ["client_credentials"],
        "scopes": ["a"],
        "client_id": "billing",
        "secret": "s" * 32,
        "uid": "5f0c2a4e-9d1b-4c3a-8e7f-1a2b3c4d5e6f",  # the same OIDCClient, served by both providers
    }
    before = make_provider(keys=KeySet.from_jwks({"keys": [old]}))
    with serve(before) as http:
        rp = RelyingParty(http, register(before.registry, "billing", **billing))
        old_token = rp.token({"grant_type": "client_credentials"}).json()["access_token"]
    during = make_provider(keys=KeySet.from_jwks({"keys": [old, new], "signing_kid": new["kid"]}))

    with serve(during) as http:
        rp = RelyingParty(http, register(during.registry, "billing", **billing))
        published = [key["kid"] for key in http.get("/jwks").json()["keys"]]
        algs = http.get("/.well-known/openid-configuration").json()["id_token_signing_alg_values_supported"]
        new_token = rp.token({"grant_type": "client_credentials"}).json()["access_token"]
        old_introspected = rp.introspect(old_token).json()

    assert published == [old["kid"], new["kid"]]
    assert algs == ["ES256", "RS256"]
    assert jwt.decode(new_token, JoseKeySet.import_key_set({"keys": [new]}), algorithms=["ES256"])
    assert old_introspected["active"] is True


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks"])
def test_published_documents_answer_browsers_cross_origin_and_only_to_reads(
    http: TestClient, path: str
) -> None:
    got = http.get(path, headers={"Origin": "https://spa.example.test"})
    head = http.head(path)
    preflight = http.options(path, headers={"Origin": "https://spa.example.test"})
    post = http.post(path)

    assert got.status_code == 200
    assert got.headers["access-control-allow-origin"] == "*"
    assert got.headers["cache-control"] == "public, max-age=300"
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    assert preflight.status_code == 204
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD, OPTIONS"
