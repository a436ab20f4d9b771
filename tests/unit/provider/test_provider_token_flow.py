"""The token endpoint's grants end to end, against each embedded state store (memory and SQLite).

Code exchange, single use and replay, refresh rotation and reuse, client credentials, public clients:
what a relying party sees, the same whichever store keeps the codes and refresh tokens.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from kubeoidc_provider.context import Provider
from support.provider import register
from support.provider_flow import Browser, RelyingParty, bearer, sign_in_for_code, sign_in_for_tokens

NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


@pytest.fixture(params=["memory", "sqlite"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def assert_no_store(response: Any) -> None:
    for name, value in NO_STORE.items():
        assert response.headers[name] == value


def assert_error(response: Any, error: str, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert_no_store(response)
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    return body


def assert_access_refused(http: TestClient, web_rp: RelyingParty, tokens: dict[str, Any]) -> None:
    """Everything one grant issued is refused: userinfo, introspection, refresh."""
    assert http.get("/userinfo", headers=bearer(tokens["access_token"])).status_code == 401
    assert web_rp.introspect(tokens["access_token"]).json() == {"active": False}
    assert web_rp.introspect(tokens["refresh_token"]).json() == {"active": False}
    assert_error(web_rp.refresh(tokens["refresh_token"]), "invalid_grant")


def test_a_code_is_exchanged_for_an_access_token_an_id_token_and_a_refresh_token(
    browser: Browser, web_rp: RelyingParty
) -> None:
    request, code = sign_in_for_code(browser, web_rp)

    response = web_rp.exchange(request, code)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert_no_store(response)
    tokens = response.json()
    assert set(tokens) == {"access_token", "token_type", "expires_in", "scope", "refresh_token", "id_token"}
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 600
    assert tokens["scope"] == "openid profile email"


def test_the_access_token_of_a_code_opens_userinfo(
    http: TestClient, browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)

    response = http.get("/userinfo", headers=bearer(tokens["access_token"]))

    assert response.status_code == 200
    assert response.json()["sub"] == "7b0c2f6e-alice"


def test_a_code_is_single_use(browser: Browser, web_rp: RelyingParty) -> None:
    request, code = sign_in_for_code(browser, web_rp)
    assert web_rp.exchange(request, code).status_code == 200

    response = web_rp.exchange(request, code)

    body = assert_error(response, "invalid_grant")
    assert body["error_description"] == "Invalid 'code' in request."


def test_a_replayed_code_revokes_the_tokens_it_issued(
    http: TestClient, browser: Browser, web_rp: RelyingParty
) -> None:
    request, code = sign_in_for_code(browser, web_rp)
    tokens = web_rp.exchange(request, code).json()

    web_rp.exchange(request, code)

    assert_access_refused(http, web_rp, tokens)


def test_a_replayed_code_leaves_other_grants_alone(
    http: TestClient, browser: Browser, web_rp: RelyingParty
) -> None:
    other = sign_in_for_tokens(browser, web_rp)
    request, code = sign_in_for_code(browser, web_rp)
    web_rp.exchange(request, code)

    web_rp.exchange(request, code)

    assert http.get("/userinfo", headers=bearer(other["access_token"])).status_code == 200
    assert web_rp.refresh(other["refresh_token"]).status_code == 200


def test_a_code_expires_after_a_minute(browser: Browser, web_rp: RelyingParty, clock: Any) -> None:
    request, code = sign_in_for_code(browser, web_rp)

    clock.advance(61)

    assert_error(web_rp.exchange(request, code), "invalid_grant")


def test_a_code_is_good_for_most_of_its_minute(browser: Browser, web_rp: RelyingParty, clock: Any) -> None:
    request, code = sign_in_for_code(browser, web_rp)

    clock.advance(55)

    assert web_rp.exchange(request, code).status_code == 200


def test_a_refresh_gives_new_tokens_and_a_new_refresh_token(
    http: TestClient, browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)

    response = web_rp.refresh(tokens["refresh_token"])

    assert response.status_code == 200
    assert_no_store(response)
    refreshed = response.json()
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["access_token"] != tokens["access_token"]
    assert refreshed["scope"] == "openid profile email"
    assert "id_token" in refreshed
    assert http.get("/userinfo", headers=bearer(refreshed["access_token"])).status_code == 200


def test_a_rotated_refresh_token_is_refused(browser: Browser, web_rp: RelyingParty) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)
    web_rp.refresh(tokens["refresh_token"])

    response = web_rp.refresh(tokens["refresh_token"])

    assert_error(response, "invalid_grant")


def test_reusing_a_rotated_refresh_token_revokes_the_whole_grant(
    http: TestClient, browser: Browser, web_rp: RelyingParty
) -> None:
    first = sign_in_for_tokens(browser, web_rp)
    second = web_rp.refresh(first["refresh_token"]).json()
    newest = web_rp.refresh(second["refresh_token"]).json()

    web_rp.refresh(first["refresh_token"])

    assert_access_refused(http, web_rp, newest)
    assert http.get("/userinfo", headers=bearer(first["access_token"])).status_code == 401


def test_a_refresh_may_narrow_the_scope(browser: Browser, web_rp: RelyingParty) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)

    response = web_rp.refresh(tokens["refresh_token"], scope="openid email")

    assert response.status_code == 200
    assert response.json()["scope"] == "openid email"


def test_a_refresh_may_not_widen_the_scope(browser: Browser, web_rp: RelyingParty) -> None:
    tokens = sign_in_for_tokens(browser, web_rp, scope="openid")

    assert_error(web_rp.refresh(tokens["refresh_token"], scope="openid email"), "invalid_scope")


def test_a_refresh_token_of_another_client_is_refused(
    browser: Browser, web_rp: RelyingParty, spa_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)

    assert_error(spa_rp.refresh(tokens["refresh_token"]), "invalid_grant")


def test_a_refresh_token_ends_with_its_grant(browser: Browser, web_rp: RelyingParty, clock: Any) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)

    clock.advance(30 * 86400 + 1)

    assert_error(web_rp.refresh(tokens["refresh_token"]), "invalid_grant")


def test_client_credentials_with_http_basic_gets_an_access_token_only(m2m_rp: RelyingParty) -> None:
    response = m2m_rp.token({"grant_type": "client_credentials", "scope": "invoices:read"})

    assert response.status_code == 200
    assert_no_store(response)
    tokens = response.json()
    assert set(tokens) == {"access_token", "token_type", "expires_in", "scope"}
    assert tokens["scope"] == "invoices:read"


def test_client_credentials_with_the_secret_in_the_form(provider: Provider, http: TestClient) -> None:
    client = register(
        provider.registry,
        "reports",
        grant_types=["client_credentials"],
        redirect_uris=[],
        scopes=["reports:read"],
        auth_method="client_secret_post",
    )

    response = RelyingParty(http, client).token({"grant_type": "client_credentials", "scope": "reports:read"})

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "reports:read"


def test_a_public_client_exchanges_its_code_with_the_pkce_verifier(
    browser: Browser, spa_rp: RelyingParty
) -> None:
    request, code = sign_in_for_code(browser, spa_rp)

    response = spa_rp.exchange(request, code)

    assert response.status_code == 200
    assert {"access_token", "id_token", "refresh_token"} <= set(response.json())


def test_a_public_client_refreshes_with_its_client_id(browser: Browser, spa_rp: RelyingParty) -> None:
    tokens = sign_in_for_tokens(browser, spa_rp)

    response = spa_rp.refresh(tokens["refresh_token"])

    assert response.status_code == 200
    assert response.json()["refresh_token"] != tokens["refresh_token"]
