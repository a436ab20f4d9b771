"""The userinfo endpoint (OIDC Core §5.3) behind bearer tokens (RFC 6750)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from kubeoidc_provider.context import Provider
from kubeoidc_provider.keys import KeySet, generate_jwks
from kubeoidc_provider.users import PROFILE_CLAIMS
from support.provider import ALICE_PROFILE, ISSUER, register
from support.provider_flow import Browser, RelyingParty, bearer, sign_in_for_tokens

ALICE = "7b0c2f6e-alice"


@pytest.fixture
def tokens(browser: Browser, web_rp: RelyingParty) -> dict[str, Any]:
    return sign_in_for_tokens(browser, web_rp, scope="openid profile email groups")


def assert_invalid_token(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["error"] == "invalid_token"


def b64(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def test_get_with_a_bearer_header_answers_the_users_claims(http: TestClient, tokens: dict[str, Any]) -> None:
    response = http.get("/userinfo", headers=bearer(tokens["access_token"]))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {
        "sub": ALICE,
        **ALICE_PROFILE,
        "email": "alice@example.com",
        "email_verified": True,
        "groups": ["admins", "developers"],
    }


def test_post_with_a_bearer_header_answers_too(http: TestClient, tokens: dict[str, Any]) -> None:
    response = http.post("/userinfo", headers=bearer(tokens["access_token"]))

    assert response.status_code == 200
    assert response.json()["sub"] == ALICE


def test_post_with_the_token_in_the_form_body_answers_too(http: TestClient, tokens: dict[str, Any]) -> None:
    response = http.post("/userinfo", data={"access_token": tokens["access_token"]})

    assert response.status_code == 200
    assert response.json()["sub"] == ALICE


def test_a_token_in_the_query_string_is_not_accepted(http: TestClient, tokens: dict[str, Any]) -> None:
    response = http.get("/userinfo", params={"access_token": tokens["access_token"]})

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("scope", "claims"),
    [
        ("openid", {"sub"}),
        ("openid profile", {"sub", "name", "preferred_username", *PROFILE_CLAIMS}),
        ("openid email", {"sub", "email", "email_verified"}),
        ("openid groups", {"sub", "groups"}),
    ],
)
def test_the_claims_follow_the_tokens_scopes(
    http: TestClient, browser: Browser, web_rp: RelyingParty, scope: str, claims: set[str]
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp, scope=scope)

    response = http.get("/userinfo", headers=bearer(tokens["access_token"]))

    assert set(response.json()) == claims


def test_another_users_token_answers_that_users_claims(
    http: TestClient, browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp, scope="openid email")
    with browser.elsewhere():
        bobs = sign_in_for_tokens(browser, web_rp, scope="openid email", username="bob")

    assert (
        http.get("/userinfo", headers=bearer(tokens["access_token"])).json()["email"] == "alice@example.com"
    )
    assert http.get("/userinfo", headers=bearer(bobs["access_token"])).json() == {
        "sub": "2d9e1a44-bob",
        "email": "bob@example.com",
        "email_verified": False,
    }


def test_no_token_gets_401_with_a_bare_bearer_challenge(http: TestClient) -> None:
    response = http.get("/userinfo")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_another_authorization_scheme_is_no_token(http: TestClient) -> None:
    response = http.get("/userinfo", headers={"Authorization": "Basic dXNlcjpwYXNz"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "Bearer"])
def test_a_malformed_token_is_invalid_token(http: TestClient, token: str) -> None:
    response = http.get("/userinfo", headers={"Authorization": f"Bearer x{token}"})

    assert_invalid_token(response)


def test_a_token_with_a_forged_signature_is_invalid_token(http: TestClient, tokens: dict[str, Any]) -> None:
    header, payload, _ = tokens["access_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "2d9e1a44-bob"
    forged = f"{header}.{b64(claims)}.{tokens['access_token'].split('.')[2]}"

    assert_invalid_token(http.get("/userinfo", headers=bearer(forged)))


def test_an_expired_token_is_invalid_token(
    http: TestClient, provider: Provider, web_rp: RelyingParty
) -> None:
    now = int(time.time())
    expired = provider.keys.sign(
        {
            "iss": ISSUER,
            "sub": ALICE,
            "aud": ISSUER,
            "client_id": web_rp.client_id,
            "scope": "openid",
            "iat": now - 700,
            "exp": now - 100,
            "jti": "old",
            "auth_time": now - 700,
        },
        typ="at+jwt",
    )

    assert_invalid_token(http.get("/userinfo", headers=bearer(expired)))


def test_an_id_token_is_not_an_access_token(http: TestClient, tokens: dict[str, Any]) -> None:
    assert_invalid_token(http.get("/userinfo", headers=bearer(tokens["id_token"])))


def test_a_token_of_another_issuer_is_invalid_token(
    http: TestClient, provider: Provider, web_rp: RelyingParty
) -> None:
    now = int(time.time())
    foreign = provider.keys.sign(
        {"iss": "https://elsewhere.example.com", "sub": ALICE, "client_id": web_rp.client_id,
         "scope": "openid", "iat": now, "exp": now + 60, "jti": "x", "auth_time": now},
        typ="at+jwt",
    )  # fmt: skip

    assert_invalid_token(http.get("/userinfo", headers=bearer(foreign)))


def test_a_revoked_token_is_invalid_token(
    http: TestClient, web_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    web_rp.revoke(tokens["access_token"])

    assert_invalid_token(http.get("/userinfo", headers=bearer(tokens["access_token"])))


@pytest.mark.parametrize(
    "header", [{"alg": "RS256", "kid": "€", "typ": "at+jwt"}, {"alg": 'a"b', "kid": 'x"y'}]
)
def test_a_token_whose_header_an_http_header_cannot_carry_is_invalid_token(
    http: TestClient, header: dict[str, str]
) -> None:
    token = f"{b64(header)}.{b64({'sub': 'x'})}.AAAA"

    response = http.get("/userinfo", headers=bearer(token))

    assert_invalid_token(response)
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_a_client_credentials_token_is_insufficient_scope(http: TestClient, m2m_rp: RelyingParty) -> None:
    tokens = m2m_rp.token({"grant_type": "client_credentials", "scope": "invoices:read"}).json()

    response = http.get("/userinfo", headers=bearer(tokens["access_token"]))

    assert response.status_code == 403
    assert response.headers["www-authenticate"].startswith('Bearer error="insufficient_scope"')
    assert response.json() == {
        "error": "insufficient_scope",
        "error_description": "The access token lacks the 'openid' scope.",
    }


def test_a_token_without_the_openid_scope_is_insufficient_scope(
    http: TestClient, browser: Browser, provider: Provider
) -> None:
    rp = RelyingParty(http, register(provider.registry, "oauth-only", scopes=["profile"]))
    tokens = sign_in_for_tokens(browser, rp, scope="profile", nonce=None)

    response = http.get("/userinfo", headers=bearer(tokens["access_token"]))

    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_userinfo_may_be_called_from_a_browser_application(http: TestClient, tokens: dict[str, Any]) -> None:
    response = http.options(
        "/userinfo",
        headers={
            "Origin": "https://spa.example.com",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Authorization",
        },
    )

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


def test_a_token_checked_before_is_refused_once_its_key_is_no_longer_published(
    http: TestClient, provider: Provider, tokens: dict[str, Any]
) -> None:
    access = bearer(tokens["access_token"])
    assert http.get("/userinfo", headers=access).status_code == 200

    provider.signing.replace(KeySet.from_jwks(generate_jwks("ES256")))

    assert_invalid_token(http.get("/userinfo", headers=access))


def test_a_token_checked_before_is_refused_once_it_expires(
    http: TestClient, tokens: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    access = bearer(tokens["access_token"])
    assert http.get("/userinfo", headers=access).status_code == 200

    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)

    assert_invalid_token(http.get("/userinfo", headers=access))
