"""npm ``openid-client`` (v6) and Debian's Chromium against a running provider.

A confidential web application, a public single-page application and a machine client each run as
a real relying party would: discovery, the authorization code flow with PKCE S256, nonce and state,
signed in through the provider's own login and consent pages in Chromium, the ID token checked by
``openid-client`` (its signature against the JWKS included), userinfo, refresh with rotation,
introspection, revocation, RP-initiated logout, client credentials, and a rotated secret refused.

Each browser flow runs once per client (Chromium takes a second to start); the tests below each assert
one behaviour of that run.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubeoidc_provider.endpoints.consent import SCOPE_DESCRIPTIONS
from kubeoidc_provider.sessions import COOKIE_NAME
from support.provider import ALICE_PROFILE

pytestmark = pytest.mark.node

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WEB_SCOPES = ["openid", "profile", "email", "groups", "offline_access"]
ALICE_SUB = "7b0c2f6e-alice"


# -- a confidential web application ---------------------------------------------------------------


@pytest.fixture(scope="module")
def web_app(register_app: Callable[..., Any]) -> Any:
    return register_app(
        "team-wiki",
        display_name="Team Wiki",
        description="Where the team writes things down.",
        scopes=WEB_SCOPES,
        redirect_uri="https://wiki.example.test/callback",
        post_logout_redirect_uri="https://wiki.example.test/signed-out",
    )


@pytest.fixture(scope="module")
def web_flow(
    web_app: Any,
    relying_party: Callable[..., dict[str, Any]],
    chromium: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    screenshots = tmp_path_factory.mktemp("screenshots")
    started = time.time()
    result = relying_party("code-flow", web_app.rp_config(screenshotDir=str(screenshots)))
    result["started"] = started
    return result


@pytest.mark.browser
def test_login_and_consent_pages_show_the_client_and_the_scopes(
    web_app: Any, web_flow: dict[str, Any]
) -> None:
    login, consent = web_flow["pages"]["login"], web_flow["pages"]["consent"]
    for page in (login, consent):
        assert page["clientName"] == "Team Wiki"
        assert page["clientDescription"] == "Where the team writes things down."
        assert Path(page["screenshot"]).read_bytes().startswith(PNG_SIGNATURE)
    assert login["path"] == "/login"
    assert login["title"] == "Sign in to Team Wiki"
    assert consent["path"] == "/consent"
    assert consent["scopes"] == [
        {"scope": scope, "description": SCOPE_DESCRIPTIONS[scope]} for scope in WEB_SCOPES
    ]


@pytest.mark.browser
def test_browser_reaches_the_exact_redirect_uri_with_code_state_and_issuer(
    web_app: Any, web_flow: dict[str, Any]
) -> None:
    callback = web_flow["callback"]
    assert f"{callback['origin']}{callback['path']}" == web_app.redirect_uri
    assert callback["params"] == ["code", "iss", "state"]
    assert callback["iss"] == web_app.provider.settings.issuer  # RFC 9207


@pytest.mark.browser
def test_session_cookie_is_httponly_and_samesite_lax_in_chromium(web_flow: dict[str, Any]) -> None:
    cookies = {cookie["name"]: cookie for cookie in web_flow["cookies"]}
    assert list(cookies) == [COOKIE_NAME]
    assert cookies[COOKIE_NAME]["httpOnly"] is True
    assert cookies[COOKIE_NAME]["sameSite"] == "Lax"
    # Secure is off only because this issuer is on loopback (http).
    assert cookies[COOKIE_NAME]["secure"] is False


@pytest.mark.browser
def test_openid_client_accepts_the_id_token_for_its_nonce_state_and_verifier(
    web_app: Any, web_flow: dict[str, Any]
) -> None:
    assert web_flow["discovery"]["issuer"] == web_app.provider.settings.issuer
    assert web_flow["authorizationRequest"]["code_challenge_method"] == "S256"
    token = web_flow["token"]
    assert token["tokenType"].lower() == "bearer"
    assert token["scope"].split() == WEB_SCOPES
    assert token["hasRefreshToken"] is True
    assert token["accessTokenHeader"]["typ"] == "at+jwt"  # RFC 9068 §2.1
    claims = token["idToken"]
    assert claims["iss"] == web_app.provider.settings.issuer
    assert claims["aud"] == web_app.client_id
    assert claims["sub"] == ALICE_SUB
    assert claims["email"] == "alice@example.com"
    assert claims["groups"] == ["admins", "developers"]
    assert "nonce" in claims
    assert "at_hash" in claims
    assert web_flow["started"] - 5 <= claims["auth_time"] <= claims["iat"] < claims["exp"]


@pytest.mark.browser
def test_userinfo_answers_with_the_granted_claims(web_flow: dict[str, Any]) -> None:
    expected = {
        "sub": ALICE_SUB,
        **ALICE_PROFILE,
        "email": "alice@example.com",
        "email_verified": True,
        "groups": ["admins", "developers"],
    }
    assert web_flow["userinfo"] == expected
    assert web_flow["userinfoAfterRefresh"] == expected


@pytest.mark.browser
def test_refresh_rotates_the_refresh_token_and_keeps_the_authentication_time(
    web_app: Any, web_flow: dict[str, Any]
) -> None:
    refresh = web_flow["refresh"]
    assert refresh["rotated"] is True
    assert refresh["newAccessToken"] is True
    first, refreshed = web_flow["token"]["idToken"], refresh["idToken"]
    # OIDC Core §12.2: same iss, sub, aud and auth_time; no nonce needed.
    for claim in ("iss", "sub", "aud", "auth_time"):
        assert refreshed[claim] == first[claim]
    assert "nonce" not in refreshed


@pytest.mark.browser
def test_introspection_shows_live_tokens_and_not_the_spent_refresh_token(
    web_app: Any, web_flow: dict[str, Any]
) -> None:
    access, refresh = web_flow["introspection"]["access"], web_flow["introspection"]["refresh"]
    assert access["active"] is True
    assert access["client_id"] == web_app.client_id
    assert access["sub"] == ALICE_SUB
    assert set(access["scope"].split()) == set(WEB_SCOPES)
    assert refresh["active"] is True
    assert refresh["client_id"] == web_app.client_id
    assert web_flow["introspection"]["spentRefresh"] == {"active": False}


@pytest.mark.browser
def test_revoking_the_refresh_token_revokes_its_access_tokens(web_flow: dict[str, Any]) -> None:
    after = web_flow["afterRevocation"]
    assert after["refresh"] == {"active": False}
    # RFC 7009 §2.1: the access tokens of the same grant are revoked with the refresh token.
    assert after["access"] == {"active": False}
    assert after["refreshGrant"]["error"] == "invalid_grant"
    assert after["userinfo"]["status"] == 401
    assert after["userinfo"]["error"] == "invalid_token"


@pytest.mark.browser
def test_a_signed_in_user_is_sent_back_silently_with_prompt_none(web_flow: dict[str, Any]) -> None:
    silent = web_flow["silent"]
    assert silent["ok"] is True, silent
    assert silent["value"]["sub"] == ALICE_SUB
    assert silent["value"]["authTime"] == web_flow["token"]["idToken"]["auth_time"]


@pytest.mark.browser
def test_rp_initiated_logout_returns_to_the_registered_uri_and_ends_the_session(
    web_app: Any, web_flow: dict[str, Any]
) -> None:
    logout = web_flow["logout"]
    assert logout["landed"] == web_app.post_logout_redirect_uri
    assert logout["stateEchoed"] is True
    assert COOKIE_NAME not in logout["cookies"]
    # OIDC Core §3.1.2.6: with the session gone, prompt=none must answer login_required.
    assert web_flow["afterLogout"]["error"] == "login_required"


@pytest.mark.browser
def test_a_replayed_authorization_code_is_refused(web_flow: dict[str, Any]) -> None:
    assert web_flow["codeReplay"]["ok"] is False
    assert web_flow["codeReplay"]["error"] == "invalid_grant"


@pytest.mark.browser
def test_the_browser_went_only_where_the_client_is_registered_and_saw_no_errors(
    web_app: Any, web_flow: dict[str, Any]
) -> None:
    assert web_flow["clientCalls"] == [
        web_app.redirect_uri,  # sign-in
        web_app.redirect_uri,  # silent sign-in
        web_app.post_logout_redirect_uri,  # logout
        web_app.redirect_uri,  # login_required after logout
    ]
    assert web_flow["browserProblems"] == []


# -- a public single-page application -------------------------------------------------------------


@pytest.fixture(scope="module")
def spa(register_app: Callable[..., Any]) -> Any:
    return register_app(
        "dashboard",
        display_name="Dashboard",
        description="A single-page application with no secret.",
        scopes=["openid", "profile", "offline_access"],
        redirect_uri="https://dashboard.example.test/",
        public=True,
    )


@pytest.fixture(scope="module")
def spa_flow(spa: Any, relying_party: Callable[..., dict[str, Any]], chromium: str) -> dict[str, Any]:
    return relying_party("code-flow", spa.rp_config(username="bob"))


@pytest.mark.browser
def test_public_client_signs_in_with_pkce_and_no_secret(spa: Any, spa_flow: dict[str, Any]) -> None:
    assert spa.secret is None
    assert spa_flow["pages"]["consent"]["clientName"] == "Dashboard"
    claims = spa_flow["token"]["idToken"]
    assert claims["aud"] == spa.client_id
    assert claims["sub"] == "2d9e1a44-bob"
    assert "email" not in claims  # not asked for
    assert spa_flow["userinfo"] == {"sub": "2d9e1a44-bob", "name": "Bob Example", "preferred_username": "bob"}
    assert spa_flow["refresh"]["rotated"] is True
    assert spa_flow["silent"]["ok"] is True
    assert spa_flow["browserProblems"] == []


@pytest.mark.browser
def test_public_client_reusing_a_spent_refresh_token_revokes_the_whole_grant(
    spa_flow: dict[str, Any],
) -> None:
    reuse = spa_flow["reuse"]
    assert reuse["spent"]["error"] == "invalid_grant"
    # RFC 9700 §4.14.2: the reuse is taken as a theft; the successor token dies too.
    assert reuse["successor"]["error"] == "invalid_grant"


# -- a machine client ------------------------------------------------------------------------------


@pytest.fixture
def machine(register_app: Callable[..., Any]) -> Any:
    return register_app(
        f"billing-job-{secrets.token_hex(2)}",
        display_name="Billing job",
        description="Runs every night; no user involved.",
        scopes=["invoices:read", "invoices:write"],
        redirect_uri="",
        grant_types=["client_credentials"],
    )


def test_machine_client_gets_a_jwt_access_token_with_client_credentials(
    machine: Any, relying_party: Callable[..., dict[str, Any]]
) -> None:
    result = relying_party("client-credentials", machine.rp_config(scope="invoices:read"))
    grant = result["grant"]
    assert grant["ok"] is True, grant
    value = grant["value"]
    assert value["scope"] == "invoices:read"
    assert value["hasRefreshToken"] is False
    assert value["hasIdToken"] is False
    assert value["accessTokenHeader"]["typ"] == "at+jwt"
    claims = value["accessTokenClaims"]
    # RFC 9068 §2.2: with no user, the subject is the client itself, marked so that no pinned client ID
    # reads as a user's subject.
    assert claims["sub"] == f"client:{machine.client_id}"
    assert claims["client_id"] == machine.client_id
    assert claims["iss"] == machine.provider.settings.issuer
    assert "auth_time" not in claims
    assert value["introspection"]["active"] is True
    assert value["introspection"]["client_id"] == machine.client_id


def test_rotated_secret_is_refused_with_invalid_client_and_the_new_one_works(
    machine: Any, relying_party: Callable[..., dict[str, Any]]
) -> None:
    old_secret, new_secret = machine.secret, secrets.token_urlsafe(32)
    before = relying_party("client-credentials", machine.rp_config(scope="invoices:read"))
    assert before["grant"]["ok"] is True, before

    machine.rotate_secret(new_secret)

    with_old = relying_party("client-credentials", machine.rp_config(clientSecret=old_secret))["grant"]
    assert with_old["ok"] is False
    assert with_old["status"] == 401
    # RFC 6749 §5.2: a failed HTTP Basic authentication is a 401 invalid_client with a challenge.
    assert with_old["error"] == "invalid_client"
    assert with_old["name"] == "WWWAuthenticateChallengeError"
    assert with_old["challenges"][0]["scheme"] == "basic"
    with_new = relying_party("client-credentials", machine.rp_config(clientSecret=new_secret))["grant"]
    assert with_new["ok"] is True, with_new


def test_client_secret_post_client_must_use_its_registered_method(
    register_app: Callable[..., Any], relying_party: Callable[..., dict[str, Any]]
) -> None:
    machine = register_app(
        f"report-job-{secrets.token_hex(2)}",
        display_name="Report job",
        description="Sends its secret in the form body.",
        scopes=["reports:read"],
        redirect_uri="",
        grant_types=["client_credentials"],
        auth_method="client_secret_post",
    )

    def grant(**config: Any) -> dict[str, Any]:
        result: dict[str, Any] = relying_party("client-credentials", machine.rp_config(**config))["grant"]
        return result

    by_post = grant(authMethod="client_secret_post")
    assert by_post["ok"] is True, by_post
    assert by_post["value"]["accessTokenClaims"]["client_id"] == machine.client_id

    by_basic = grant(authMethod="client_secret_basic")
    assert by_basic["ok"] is False
    assert by_basic["error"] == "invalid_client"

    wrong = grant(authMethod="client_secret_post", clientSecret="not-the-secret")
    # RFC 6749 §5.2: without HTTP authentication, invalid_client is a 400 or 401 JSON error body.
    assert wrong["ok"] is False
    assert wrong["error"] == "invalid_client"
    assert wrong["status"] in (400, 401)


# -- ID tokens signed with ES256 and EdDSA ---------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_openid_client_verifies_an_id_token_signed_with_the_algorithm_the_client_registered(
    register_app: Callable[..., Any], relying_party: Callable[..., dict[str, Any]], chromium: str, alg: str
) -> None:
    app = register_app(
        f"ec-wiki-{alg.lower()}",
        display_name="EC Wiki",
        description="Registered for another ID token algorithm.",
        scopes=WEB_SCOPES,
        redirect_uri=f"https://ec-wiki-{alg.lower()}.example.test/callback",
        spec_fields={"idTokenSignedResponseAlg": alg, "accessTokenSignedResponseAlg": alg},
    )

    result = relying_party("code-flow", app.rp_config(idTokenAlg=alg))

    token = result["token"]
    # openid-client checked the signature against the JWKS and accepted only the registered algorithm.
    assert token["idTokenHeader"]["alg"] == alg
    assert token["idTokenHeader"]["kid"] == app.provider.keys.signing_kids[alg]
    assert token["accessTokenHeader"] == {"alg": alg, "kid": token["idTokenHeader"]["kid"], "typ": "at+jwt"}
    assert token["idToken"]["sub"] == ALICE_SUB
    assert token["idToken"]["aud"] == app.client_id
    assert result["refresh"]["idToken"]["sub"] == ALICE_SUB
    assert result["userinfo"]["sub"] == ALICE_SUB
