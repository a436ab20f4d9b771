"""Token revocation (RFC 7009) and introspection (RFC 7662), each for the client the token was issued to."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from kubeoidc_provider.context import Provider
from support.provider import ISSUER, register
from support.provider_flow import Browser, RelyingParty, bearer, sign_in_for_tokens

ALICE = "7b0c2f6e-alice"


@pytest.fixture
def tokens(browser: Browser, web_rp: RelyingParty) -> dict[str, Any]:
    return sign_in_for_tokens(browser, web_rp)


@pytest.fixture
def other_rp(http: TestClient, provider: Provider) -> RelyingParty:
    """Another confidential client, with a secret of its own."""
    return RelyingParty(http, register(provider.registry, "other-app"))


def assert_json_no_store(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


# Revocation ------------------------------------------------------------------------------------------


def test_revoking_a_refresh_token_revokes_its_whole_grant(
    http: TestClient, web_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    response = web_rp.revoke(tokens["refresh_token"], token_type_hint="refresh_token")

    assert assert_json_no_store(response) == {}
    assert web_rp.refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401


def test_revoking_a_refresh_token_leaves_other_grants_alone(
    http: TestClient, browser: Browser, web_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    other = sign_in_for_tokens(browser, web_rp)

    web_rp.revoke(tokens["refresh_token"])

    assert http.get("/userinfo", headers=bearer(other["access_token"])).status_code == 200
    assert web_rp.refresh(other["refresh_token"]).status_code == 200


def test_revoking_an_access_token_revokes_that_token(
    http: TestClient, web_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    response = web_rp.revoke(tokens["access_token"], token_type_hint="access_token")

    assert response.status_code == 200
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert web_rp.introspect(tokens["access_token"]).json() == {"active": False}


def test_revoking_an_access_token_keeps_the_refresh_token(
    web_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    web_rp.revoke(tokens["access_token"])

    assert web_rp.refresh(tokens["refresh_token"]).status_code == 200


def test_revoking_without_a_hint_finds_either_kind(
    http: TestClient, web_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    assert web_rp.revoke(tokens["access_token"]).status_code == 200
    assert web_rp.revoke(tokens["refresh_token"]).status_code == 200

    assert web_rp.refresh(tokens["refresh_token"]).status_code == 400


def test_revoking_with_the_wrong_hint_still_finds_the_token(
    web_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    web_rp.revoke(tokens["refresh_token"], token_type_hint="access_token")

    assert web_rp.refresh(tokens["refresh_token"]).status_code == 400


@pytest.mark.parametrize("endpoint", ["revoke", "introspect"])
def test_an_unknown_token_type_hint_is_a_400_and_keeps_the_token(
    web_rp: RelyingParty, tokens: dict[str, Any], endpoint: str
) -> None:
    response = web_rp.post(f"/{endpoint}", {"token": tokens["access_token"], "token_type_hint": "id_token"})

    # RFC 7009 section 2.2.1: an error response as RFC 6749 section 5.2 has them; 401 would say the
    # client failed to authenticate.
    assert assert_json_no_store(response, 400)["error"] == "unsupported_token_type"
    assert "www-authenticate" not in response.headers
    assert web_rp.introspect(tokens["access_token"]).json()["active"] is True


def test_revoking_an_unknown_token_answers_200(web_rp: RelyingParty) -> None:
    response = web_rp.revoke("never-issued")

    assert assert_json_no_store(response) == {}


def test_revoking_a_token_twice_answers_200_both_times(web_rp: RelyingParty, tokens: dict[str, Any]) -> None:
    assert web_rp.revoke(tokens["refresh_token"]).status_code == 200
    assert web_rp.revoke(tokens["refresh_token"]).status_code == 200


def test_a_client_cannot_revoke_another_clients_token(
    http: TestClient, web_rp: RelyingParty, other_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    response = other_rp.revoke(tokens["refresh_token"])

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert web_rp.refresh(tokens["refresh_token"]).status_code == 200


def test_revocation_requires_the_clients_secret(web_rp: RelyingParty, tokens: dict[str, Any]) -> None:
    response = web_rp.post("/revoke", {"token": tokens["refresh_token"]}, secret="wrong")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert web_rp.refresh(tokens["refresh_token"]).status_code == 200


def test_revocation_without_a_token_is_invalid_request(web_rp: RelyingParty) -> None:
    response = web_rp.post("/revoke", {})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


def test_a_public_client_revokes_its_token_with_its_client_id(
    http: TestClient, browser: Browser, spa_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, spa_rp)

    response = spa_rp.revoke(tokens["refresh_token"])

    assert response.status_code == 200
    assert spa_rp.refresh(tokens["refresh_token"]).status_code == 400
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401


def test_a_public_client_cannot_revoke_a_confidential_clients_token(
    spa_rp: RelyingParty, web_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    response = spa_rp.revoke(tokens["refresh_token"])

    assert response.status_code == 400
    assert web_rp.refresh(tokens["refresh_token"]).status_code == 200


def test_a_confidential_client_cannot_revoke_by_client_id_alone(
    web_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    response = web_rp.post("/revoke", {"token": tokens["refresh_token"]}, method="none")

    assert response.status_code == 401
    assert web_rp.refresh(tokens["refresh_token"]).status_code == 200


# Introspection ---------------------------------------------------------------------------------------


def test_an_own_access_token_is_active_with_its_claims(web_rp: RelyingParty, tokens: dict[str, Any]) -> None:
    body = assert_json_no_store(web_rp.introspect(tokens["access_token"], token_type_hint="access_token"))

    assert body["active"] is True
    assert body["client_id"] == web_rp.client_id
    assert body["sub"] == ALICE
    assert body["iss"] == ISSUER
    assert body["aud"] == ISSUER
    assert body["token_type"] == "Bearer"
    assert set(body["scope"].split()) == {"openid", "profile", "email"}
    assert body["exp"] > time.time()
    assert body["iat"] <= time.time()
    assert body["jti"]


def test_an_own_refresh_token_is_active_with_its_claims(web_rp: RelyingParty, tokens: dict[str, Any]) -> None:
    body = assert_json_no_store(web_rp.introspect(tokens["refresh_token"], token_type_hint="refresh_token"))

    assert body["active"] is True
    assert body["client_id"] == web_rp.client_id
    assert body["sub"] == ALICE
    assert body["scope"] == "openid profile email"
    assert body["exp"] > time.time() + 29 * 86400


def test_a_client_credentials_token_is_active_for_its_client(m2m_rp: RelyingParty) -> None:
    token = m2m_rp.token({"grant_type": "client_credentials", "scope": "invoices:read"}).json()[
        "access_token"
    ]

    body = m2m_rp.introspect(token).json()

    assert body["active"] is True
    assert body["sub"] == f"client:{m2m_rp.client_id}"
    assert body["scope"] == "invoices:read"


def test_an_unknown_token_is_inactive(web_rp: RelyingParty) -> None:
    assert assert_json_no_store(web_rp.introspect("never-issued")) == {"active": False}


def test_an_expired_access_token_is_inactive(provider: Provider, web_rp: RelyingParty) -> None:
    now = int(time.time())
    expired = provider.keys.sign(
        {"iss": ISSUER, "sub": ALICE, "aud": ISSUER, "client_id": web_rp.client_id, "scope": "openid",
         "iat": now - 700, "exp": now - 100, "jti": "old", "auth_time": now - 700},
        typ="at+jwt",
    )  # fmt: skip

    assert web_rp.introspect(expired).json() == {"active": False}


def test_a_revoked_refresh_token_and_its_access_token_are_inactive(
    web_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    web_rp.revoke(tokens["refresh_token"])

    assert web_rp.introspect(tokens["refresh_token"]).json() == {"active": False}
    assert web_rp.introspect(tokens["access_token"]).json() == {"active": False}


def test_a_rotated_refresh_token_is_inactive(web_rp: RelyingParty, tokens: dict[str, Any]) -> None:
    refreshed = web_rp.refresh(tokens["refresh_token"]).json()

    assert web_rp.introspect(tokens["refresh_token"]).json() == {"active": False}
    assert web_rp.introspect(refreshed["refresh_token"]).json()["active"] is True


def test_another_clients_token_is_inactive(other_rp: RelyingParty, tokens: dict[str, Any]) -> None:
    assert other_rp.introspect(tokens["access_token"]).json() == {"active": False}
    assert other_rp.introspect(tokens["refresh_token"]).json() == {"active": False}


def test_an_id_token_is_not_an_active_access_token(web_rp: RelyingParty, tokens: dict[str, Any]) -> None:
    assert web_rp.introspect(tokens["id_token"]).json() == {"active": False}


def test_introspection_accepts_the_secret_in_the_form(web_rp: RelyingParty, tokens: dict[str, Any]) -> None:
    response = web_rp.post("/introspect", {"token": tokens["access_token"]}, method="client_secret_post")

    assert response.json()["active"] is True


def test_introspection_requires_client_authentication(http: TestClient, tokens: dict[str, Any]) -> None:
    response = http.post("/introspect", data={"token": tokens["access_token"]})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_introspection_with_a_wrong_secret_is_invalid_client(
    web_rp: RelyingParty, tokens: dict[str, Any]
) -> None:
    response = web_rp.post("/introspect", {"token": tokens["access_token"]}, secret="wrong")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "active" not in response.json()


def test_a_public_client_may_not_introspect(browser: Browser, spa_rp: RelyingParty) -> None:
    tokens = sign_in_for_tokens(browser, spa_rp)

    response = spa_rp.introspect(tokens["access_token"])

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_introspection_without_a_token_is_invalid_request(web_rp: RelyingParty) -> None:
    response = web_rp.post("/introspect", {})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
