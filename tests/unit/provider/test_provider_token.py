"""The token endpoint's errors (RFC 6749 §5.2) and the tokens it signs (OIDC Core §2, RFC 9068)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from kubeoidc_provider.context import Provider
from support.provider import ISSUER, RegisteredClient, register
from support.provider_flow import Browser, RelyingParty, sign_in_for_code, sign_in_for_tokens

ALICE = "7b0c2f6e-alice"


def assert_error(response: Any, error: str, status: int = 400, description: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["error"] == error
    if description is not None:
        assert body["error_description"] == description


def decode_header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return header


@pytest.fixture
def signed_in(browser: Browser, web_rp: RelyingParty) -> tuple[Any, str]:
    """An authorization request and the code it brought back."""
    return sign_in_for_code(browser, web_rp)


# invalid_request ---------------------------------------------------------------------------------------


def test_a_code_exchange_without_a_code_is_invalid_request(web_rp: RelyingParty, signed_in: Any) -> None:
    request, _ = signed_in

    response = web_rp.token({"grant_type": "authorization_code", "redirect_uri": request.redirect_uri})

    assert_error(response, "invalid_request", description="Missing 'code' in request.")


def test_a_body_that_is_not_a_form_is_invalid_request(http: TestClient, web: RegisteredClient) -> None:
    response = http.post(
        "/token", json={"grant_type": "client_credentials"}, auth=(web.client_id, web.secret or "")
    )

    assert_error(
        response,
        "invalid_request",
        description="The request body must be application/x-www-form-urlencoded.",
    )


def test_a_repeated_parameter_is_invalid_request(
    http: TestClient, web: RegisteredClient, signed_in: Any
) -> None:
    _, code = signed_in

    response = http.post(
        "/token",
        content=f"grant_type=authorization_code&code={code}&code={code}",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(web.client_id, web.secret or ""),
    )

    assert_error(
        response,
        "invalid_request",
        description="A parameter is repeated; each may appear once (RFC 6749 section 3.2).",
    )


def test_an_oversized_body_is_invalid_request(http: TestClient) -> None:
    response = http.post("/token", data={"grant_type": "client_credentials", "pad": "x" * 70_000})

    assert_error(response, "invalid_request", description="The request body is too large.")


def test_the_token_endpoint_takes_only_post(http: TestClient) -> None:
    assert http.get("/token").status_code == 405


# invalid_client ----------------------------------------------------------------------------------------


def test_an_unknown_client_with_http_basic_gets_401_and_a_basic_challenge(http: TestClient) -> None:
    response = http.post("/token", data={"grant_type": "client_credentials"}, auth=("nobody", "secret"))

    assert_error(response, "invalid_client", status=401)
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_a_wrong_secret_with_http_basic_gets_401_and_a_basic_challenge(m2m_rp: RelyingParty) -> None:
    response = m2m_rp.token({"grant_type": "client_credentials"}, secret="wrong")

    assert_error(response, "invalid_client", status=401)
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert 'error="invalid_client"' in response.headers["www-authenticate"]


def test_a_client_secret_post_for_a_basic_client_is_invalid_client(m2m_rp: RelyingParty) -> None:
    response = m2m_rp.token({"grant_type": "client_credentials"}, method="client_secret_post")

    assert_error(response, "invalid_client", status=401)


def test_http_basic_for_a_client_secret_post_client_is_invalid_client(
    http: TestClient, provider: Provider
) -> None:
    client = register(
        provider.registry, "poster", grant_types=["client_credentials"], auth_method="client_secret_post"
    )
    rp = RelyingParty(http, client)

    response = rp.token({"grant_type": "client_credentials"}, method="client_secret_basic")

    assert_error(response, "invalid_client", status=401)


def test_a_confidential_client_without_its_secret_is_invalid_client(
    web_rp: RelyingParty, signed_in: Any
) -> None:
    request, code = signed_in

    response = web_rp.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": request.redirect_uri},
        method="none",
    )

    assert_error(response, "invalid_client", status=401)


def test_a_public_client_presenting_a_secret_is_invalid_client(
    browser: Browser, spa_rp: RelyingParty
) -> None:
    request, code = sign_in_for_code(browser, spa_rp)

    response = spa_rp.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": request.redirect_uri},
        method="client_secret_basic",
        secret="made-up",
    )

    assert_error(response, "invalid_client", status=401)


def test_basic_credentials_that_are_not_utf8_are_invalid_client(http: TestClient) -> None:
    credentials = base64.b64encode(b"\xff\xfe:\xfd").decode()

    response = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {credentials}"}
    )

    assert_error(response, "invalid_client", status=401)


def test_basic_credentials_that_are_not_base64_are_invalid_client(http: TestClient) -> None:
    response = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": "Basic !!!"}
    )

    assert_error(response, "invalid_client", status=401)


def test_form_encoded_basic_credentials_are_decoded(http: TestClient, provider: Provider) -> None:
    client = register(
        provider.registry,
        "encoded",
        grant_types=["client_credentials"],
        scopes=["a"],
        secret="s3cr3t:with/odd+chars",
    )
    credentials = base64.b64encode(f"{client.client_id}:s3cr3t%3Awith%2Fodd%2Bchars".encode()).decode()

    response = http.post(
        "/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {credentials}"}
    )

    assert response.status_code == 200


# invalid_grant -----------------------------------------------------------------------------------------


def test_an_unknown_code_is_invalid_grant(web_rp: RelyingParty, signed_in: Any) -> None:
    request, _ = signed_in

    response = web_rp.exchange(request, "not-a-code")

    assert_error(response, "invalid_grant", description="Invalid 'code' in request.")


def test_a_code_issued_to_another_client_is_invalid_grant(
    http: TestClient, provider: Provider, signed_in: Any
) -> None:
    request, code = signed_in
    other = RelyingParty(http, register(provider.registry, "other-app"))

    response = other.exchange(request, code)

    assert_error(response, "invalid_grant", description="Invalid 'code' in request.")


def test_a_redirect_uri_unlike_the_authorization_requests_is_invalid_grant(
    web_rp: RelyingParty, signed_in: Any
) -> None:
    request, code = signed_in

    response = web_rp.exchange(request, code, redirect_uri="https://web-app.example.com/other")

    assert_error(response, "invalid_grant", description="Invalid 'redirect_uri' in request.")


def test_a_missing_redirect_uri_is_invalid_grant(web_rp: RelyingParty, signed_in: Any) -> None:
    request, code = signed_in

    response = web_rp.exchange(request, code, redirect_uri=None)

    assert_error(response, "invalid_grant", description="Invalid 'redirect_uri' in request.")


def test_a_wrong_pkce_verifier_is_invalid_grant(web_rp: RelyingParty, signed_in: Any) -> None:
    request, code = signed_in

    response = web_rp.exchange(request, code, code_verifier="x" * 43)

    assert_error(response, "invalid_grant", description="Code challenge failed.")


def test_a_missing_pkce_verifier_is_invalid_request(web_rp: RelyingParty, signed_in: Any) -> None:
    request, code = signed_in

    response = web_rp.exchange(request, code, code_verifier=None)

    assert_error(response, "invalid_request", description="Missing 'code_verifier'")


@pytest.fixture
def without_required_pkce(
    make_provider: Callable[..., Provider], serve: Callable[..., Any]
) -> Iterator[tuple[Browser, RelyingParty]]:
    """A browser and a confidential web client on a provider with ``require_pkce`` off."""
    provider = make_provider(require_pkce=False)
    with serve(provider) as http:
        yield (
            Browser(http, provider.settings.issuer),
            RelyingParty(http, register(provider.registry, "web-app")),
        )


def test_a_verifier_for_a_request_without_a_challenge_is_invalid_request(
    without_required_pkce: tuple[Browser, RelyingParty],
) -> None:
    browser, web_rp = without_required_pkce
    request, code = sign_in_for_code(browser, web_rp, pkce=False)

    response = web_rp.exchange(request, code, code_verifier="x" * 43)

    assert_error(response, "invalid_request")


def test_a_confidential_client_may_go_without_pkce_only_when_the_setting_allows(
    browser: Browser, web_rp: RelyingParty, without_required_pkce: tuple[Browser, RelyingParty]
) -> None:
    refused = browser.authorize(web_rp.auth_request(pkce=False).params)
    assert refused.status_code == 302
    assert "error=invalid_request" in refused.headers["location"]

    lenient_browser, lenient_rp = without_required_pkce
    request, code = sign_in_for_code(lenient_browser, lenient_rp, pkce=False)

    assert lenient_rp.exchange(request, code).status_code == 200


def test_a_public_client_without_its_verifier_is_invalid_request(
    browser: Browser, spa_rp: RelyingParty
) -> None:
    request, code = sign_in_for_code(browser, spa_rp)

    response = spa_rp.exchange(request, code, code_verifier=None)

    assert_error(response, "invalid_request", description="Missing 'code_verifier'")


def test_an_unknown_refresh_token_is_invalid_grant(web_rp: RelyingParty) -> None:
    assert_error(web_rp.refresh("not-a-refresh-token"), "invalid_grant")


def test_a_refresh_without_a_refresh_token_is_invalid_request(web_rp: RelyingParty) -> None:
    assert_error(web_rp.token({"grant_type": "refresh_token"}), "invalid_request")


# unauthorized_client, unsupported_grant_type, invalid_scope --------------------------------------------


def test_a_grant_type_the_client_is_not_registered_for_is_unauthorized_client(
    web_rp: RelyingParty, m2m_rp: RelyingParty
) -> None:
    assert_error(web_rp.token({"grant_type": "client_credentials"}), "unauthorized_client")
    assert_error(
        m2m_rp.token({"grant_type": "authorization_code", "code": "x", "redirect_uri": "https://x"}),
        "unauthorized_client",
    )
    assert_error(m2m_rp.refresh("x"), "unauthorized_client")


def test_a_client_without_the_refresh_grant_gets_no_refresh_token(
    browser: Browser, provider: Provider
) -> None:
    client = register(provider.registry, "no-refresh", grant_types=["authorization_code"])
    rp = RelyingParty(browser.http, client)

    tokens = sign_in_for_tokens(browser, rp)

    assert "refresh_token" not in tokens
    assert "id_token" in tokens


@pytest.mark.parametrize(
    "grant_type", ["password", "implicit", "urn:ietf:params:oauth:grant-type:token-exchange", 'a"b', "é"]
)
def test_a_grant_type_the_provider_does_not_have_is_unsupported_grant_type(
    m2m_rp: RelyingParty, grant_type: str
) -> None:
    assert_error(m2m_rp.token({"grant_type": grant_type}), "unsupported_grant_type")


@pytest.mark.parametrize(
    ("scope", "granted"),
    [
        ("invoices:read invoices:write", "invoices:read"),
        ("invoices:read openid", "invoices:read"),
        ("offline_access invoices:read admin", "invoices:read"),
    ],
)
def test_client_credentials_grant_only_the_clients_own_scopes_and_say_which(
    m2m_rp: RelyingParty, scope: str, granted: str
) -> None:
    tokens = m2m_rp.token({"grant_type": "client_credentials", "scope": scope}).json()

    assert tokens["scope"] == granted
    assert "id_token" not in tokens
    assert "refresh_token" not in tokens


@pytest.mark.parametrize("scope", ["admin", "openid"])
def test_client_credentials_for_no_scope_the_client_may_have_gets_a_token_without_scope(
    m2m_rp: RelyingParty, scope: str
) -> None:
    tokens = m2m_rp.token({"grant_type": "client_credentials", "scope": scope}).json()

    assert "scope" not in tokens
    assert "id_token" not in tokens


def test_client_credentials_without_a_scope_gets_a_token_without_scope(m2m_rp: RelyingParty) -> None:
    tokens = m2m_rp.token({"grant_type": "client_credentials"}).json()

    assert "scope" not in tokens
    assert "refresh_token" not in tokens


# The ID token ------------------------------------------------------------------------------------------


def test_the_id_token_carries_the_core_claims(
    provider: Provider, browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp, nonce="n-42")

    claims = provider.keys.verify(tokens["id_token"])

    assert claims["iss"] == ISSUER
    assert claims["sub"] == ALICE
    assert claims["aud"] == web_rp.client_id
    assert claims["nonce"] == "n-42"
    assert claims["exp"] - claims["iat"] == 3600
    assert isinstance(claims["auth_time"], int)
    assert claims["auth_time"] <= claims["iat"]
    assert decode_header(tokens["id_token"])["typ"] == "JWT"


def test_the_id_token_at_hash_is_the_left_half_of_the_access_tokens_sha256(
    provider: Provider, browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)
    digest = hashlib.sha256(tokens["access_token"].encode()).digest()[:16]

    claims = provider.keys.verify(tokens["id_token"])

    assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert claims["at_hash"] == provider.keys.hash_half(tokens["access_token"])


def test_the_id_token_has_no_nonce_when_none_was_sent(
    provider: Provider, browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp, nonce=None)

    assert "nonce" not in provider.keys.verify(tokens["id_token"])


@pytest.mark.parametrize(
    ("scope", "present", "absent"),
    [
        ("openid", set(), {"name", "preferred_username", "email", "email_verified", "groups"}),
        ("openid profile", {"name", "preferred_username"}, {"email", "email_verified", "groups"}),
        ("openid email", {"email", "email_verified"}, {"name", "preferred_username", "groups"}),
        ("openid groups", {"groups"}, {"name", "preferred_username", "email", "email_verified"}),
    ],
)
def test_the_id_token_carries_the_claims_of_the_granted_scopes(
    provider: Provider,
    browser: Browser,
    web_rp: RelyingParty,
    scope: str,
    present: set[str],
    absent: set[str],
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp, scope=scope)

    claims = provider.keys.verify(tokens["id_token"])

    assert present <= set(claims)
    assert not absent & set(claims)


@pytest.mark.parametrize("scope", ["openid profile", "openid address", "openid phone"])
def test_beside_an_access_token_the_id_token_leaves_the_other_scope_claims_to_userinfo(
    provider: Provider, browser: Browser, web_rp: RelyingParty, scope: str
) -> None:
    web_rp.client.objects[0]["spec"]["scopes"].extend(["address", "phone"])
    provider.registry.upsert_oidcclient(web_rp.client.objects[0])
    tokens = sign_in_for_tokens(browser, web_rp, scope=scope)

    claims = provider.keys.verify(tokens["id_token"])

    assert tokens["scope"] == scope
    assert not {"given_name", "updated_at", "address", "phone_number", "phone_number_verified"} & set(claims)


def test_a_claims_request_puts_a_profile_claim_in_the_id_token(
    provider: Provider, browser: Browser, web_rp: RelyingParty
) -> None:
    claims_request = json.dumps({"id_token": {"given_name": None, "locale": {"essential": True}}})
    tokens = sign_in_for_tokens(browser, web_rp, scope="openid", claims=claims_request)

    claims = provider.keys.verify(tokens["id_token"])

    assert claims["given_name"] == "Alice"
    assert claims["locale"] == "en-GB"
    assert "family_name" not in claims


def test_the_id_token_claims_are_the_users(
    provider: Provider, browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp, scope="openid profile email groups")

    claims = provider.keys.verify(tokens["id_token"])

    assert claims["name"] == "Alice Example"
    assert claims["preferred_username"] == "alice"
    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True
    assert claims["groups"] == ["admins", "developers"]


def test_a_refreshed_id_token_keeps_the_subject_and_auth_time(
    provider: Provider, browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)
    first = provider.keys.verify(tokens["id_token"])

    refreshed = web_rp.refresh(tokens["refresh_token"]).json()

    claims = provider.keys.verify(refreshed["id_token"])
    assert claims["sub"] == first["sub"]
    assert claims["auth_time"] == first["auth_time"]
    assert claims["aud"] == web_rp.client_id
    assert claims["at_hash"] == provider.keys.hash_half(refreshed["access_token"])


def test_no_id_token_without_the_openid_scope(browser: Browser, provider: Provider) -> None:
    client = register(provider.registry, "oauth-only", scopes=["profile", "offline_access"])
    rp = RelyingParty(browser.http, client)

    tokens = sign_in_for_tokens(browser, rp, scope="profile", nonce=None)

    assert "id_token" not in tokens
    assert tokens["scope"] == "profile"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_id_tokens_are_signed_with_the_configured_algorithm(make_provider: Any, serve: Any, alg: str) -> None:
    provider = make_provider(alg=alg)
    client = register(provider.registry, "web-app")
    with serve(provider) as http:
        tokens = sign_in_for_tokens(Browser(http, ISSUER), RelyingParty(http, client))

    assert decode_header(tokens["id_token"])["alg"] == alg
    claims = provider.keys.verify(tokens["id_token"])
    assert claims["at_hash"] == provider.keys.hash_half(tokens["access_token"])


# The access token (RFC 9068) ---------------------------------------------------------------------------


def test_the_access_token_is_an_rfc9068_jwt(
    provider: Provider, browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)

    header = decode_header(tokens["access_token"])
    claims = provider.keys.verify(tokens["access_token"], typ="at+jwt")

    assert header["typ"] == "at+jwt"
    assert header["kid"] == provider.keys.signing_kid
    assert claims["iss"] == ISSUER
    assert claims["aud"] == ISSUER
    assert claims["sub"] == ALICE
    assert claims["client_id"] == web_rp.client_id
    assert claims["scope"] == "openid profile email"
    assert claims["exp"] - claims["iat"] == 600
    assert isinstance(claims["jti"], str)
    assert claims["jti"]
    assert isinstance(claims["auth_time"], int)


def test_each_access_token_has_its_own_jti(
    provider: Provider, browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)
    refreshed = web_rp.refresh(tokens["refresh_token"]).json()

    first = provider.keys.verify(tokens["access_token"])
    second = provider.keys.verify(refreshed["access_token"])

    assert first["jti"] != second["jti"]


def test_a_client_credentials_access_token_is_about_the_client(
    provider: Provider, m2m_rp: RelyingParty
) -> None:
    tokens = m2m_rp.token({"grant_type": "client_credentials", "scope": "invoices:read"}).json()

    claims = provider.keys.verify(tokens["access_token"], typ="at+jwt")

    assert claims["sub"] == f"client:{m2m_rp.client_id}"
    assert claims["client_id"] == m2m_rp.client_id
    assert claims["scope"] == "invoices:read"
    assert "auth_time" not in claims


def test_the_access_token_lifetime_follows_the_settings(make_provider: Any, serve: Any) -> None:
    provider = make_provider(access_token_ttl=120)
    client = register(provider.registry, "svc", grant_types=["client_credentials"], scopes=["a"])
    with serve(provider) as http:
        tokens = RelyingParty(http, client).token({"grant_type": "client_credentials"}).json()

    claims = provider.keys.verify(tokens["access_token"])
    assert tokens["expires_in"] == 120
    assert claims["exp"] - claims["iat"] == 120


def test_a_client_pinning_a_users_subject_as_its_id_cannot_mint_that_users_subject(
    provider: Provider, http: TestClient
) -> None:
    # A tenant pins alice's subject as its client ID and asks for a token for itself.
    impostor = register(
        provider.registry,
        "impostor",
        client_id=ALICE,
        grant_types=["client_credentials"],
        redirect_uris=[],
        scopes=["api"],
    )
    response = http.post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "api"},
        auth=(ALICE, impostor.secret or ""),
    )

    claims = provider.keys.verify(response.json()["access_token"], typ="at+jwt")
    assert claims["sub"] != ALICE
    assert claims["sub"] == f"client:{ALICE}"
