"""The security rules of the design, each proven by a test named after it, as a client or browser sees it.

Rules proven elsewhere under their own names, so as not to run them twice:

- a code is single-use, expires in a minute, and its replay revokes what it issued:
  ``test_provider_token_flow.py`` (``test_a_code_is_single_use``, ``test_a_code_expires_after_a_minute``,
  ``test_a_replayed_code_revokes_the_tokens_it_issued``), against both embedded state stores;
- the provider needs only read access: the chart's RBAC tests (``test_provider_never_writes``);
- a labelled Secret that the OIDCClient does not own registers nothing: the registry's tests.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

import kubeoidc_contract as contract
from kubeoidc_provider.context import Provider
from support.provider import ISSUER, PASSWORD, RegisteredClient, register
from support.provider_flow import (
    Browser,
    RelyingParty,
    bearer,
    code_of,
    hidden,
    location,
    page_text,
    redirect_params,
    sign_in_for_code,
)

CALLBACK = "https://web-app.example.com/callback"
EVIL = "https://evil.example.com/callback"
FRAMING_HEADERS = {"x-frame-options": "DENY", "cache-control": "no-store"}


def rotated(client: RegisteredClient, new_secret: str, **annotations: str) -> dict[str, Any]:
    """The client's Secret as the operator writes it after a rotation."""
    secret = copy.deepcopy(client.objects[1])
    secret["data"][contract.CLIENT_SECRET_KEY] = base64.b64encode(new_secret.encode()).decode()
    if annotations:
        secret["metadata"]["annotations"] = annotations
    return secret


def grace(old_secret: str, until: datetime) -> dict[str, str]:
    return {
        contract.PREVIOUS_SECRET_HASH_ANNOTATION: hashlib.sha256(old_secret.encode()).hexdigest(),
        contract.PREVIOUS_SECRET_EXPIRES_ANNOTATION: until.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def client_credentials(rp: RelyingParty, secret: str) -> int:
    return rp.token({"grant_type": "client_credentials"}, secret=secret).status_code


def assert_framing_forbidden(response: Any) -> None:
    for name, value in FRAMING_HEADERS.items():
        assert response.headers[name] == value
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


# Redirect URIs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        CALLBACK + "/",
        "https://WEB-APP.example.com/callback",
        "https://web-app.example.com/Callback",
        CALLBACK + "?next=https://evil.example.com",
        CALLBACK + "#fragment",
        "https://web-app.example.com/call",
        CALLBACK + "extra",
        "http://web-app.example.com/callback",
        "https://web-app.example.com:443/callback",
        "https://web-app.example.com/callback/../evil",
        "https://web-app.example.com/%63allback",
        " " + CALLBACK,
        EVIL,
    ],
)
def test_redirect_uris_are_compared_exactly(
    browser: Browser, web_rp: RelyingParty, redirect_uri: str
) -> None:
    response = browser.authorize(web_rp.auth_request(redirect_uri=redirect_uri).params)

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "The 'redirect_uri' is not one of the client's registered redirect URIs." in page_text(response)
    assert redirect_uri.strip() not in page_text(response)


def test_the_registered_redirect_uri_itself_is_accepted(browser: Browser, web_rp: RelyingParty) -> None:
    response = browser.sign_in(web_rp.auth_request(redirect_uri=CALLBACK).params)

    assert location(response).startswith(CALLBACK + "?code=")


@pytest.mark.parametrize(
    "params",
    [
        {"response_type": "code", "client_id": "nobody", "redirect_uri": EVIL, "state": "s"},
        {"response_type": "token", "client_id": "{web}", "redirect_uri": EVIL, "state": "s"},
        {"response_type": "code", "client_id": "{web}", "redirect_uri": EVIL, "scope": "admin", "state": "s"},
        {"response_type": "code", "client_id": "{web}", "redirect_uri": EVIL, "prompt": "none"},
    ],
    ids=["unknown-client", "unsupported-response-type", "invalid-scope", "login-required"],
)
def test_there_is_no_open_redirect(browser: Browser, web: RegisteredClient, params: dict[str, str]) -> None:
    params = {name: value.format(web=web.client_id) for name, value in params.items()}

    response = browser.authorize(params)

    assert response.status_code == 400
    assert "location" not in response.headers


def test_there_is_no_open_redirect_after_logout(browser: Browser, web_rp: RelyingParty) -> None:
    request, code = sign_in_for_code(browser, web_rp)
    id_token = web_rp.exchange(request, code).json()["id_token"]

    response = browser.http.get(
        "/logout",
        params={"id_token_hint": id_token, "post_logout_redirect_uri": EVIL},
        follow_redirects=False,
    )

    assert response.status_code == 400
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "params",
    [
        {"response_type": "code", "redirect_uri": CALLBACK},
        {"response_type": "code", "client_id": "nobody", "redirect_uri": CALLBACK},
        {"response_type": "code", "client_id": "{web}", "scope": "admin"},
        {"response_type": "code", "client_id": "{web}", "redirect_uri": CALLBACK + "/", "scope": "admin"},
    ],
    ids=["no-client-id", "unknown-client", "no-redirect-uri", "unregistered-redirect-uri"],
)
def test_errors_before_a_trusted_redirect_uri_is_known_go_to_an_error_page(
    browser: Browser, web: RegisteredClient, params: dict[str, str]
) -> None:
    params = {name: value.format(web=web.client_id) for name, value in params.items()}

    response = browser.authorize(params)

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers


def test_errors_after_the_redirect_uri_is_trusted_go_back_to_it(
    browser: Browser, web_rp: RelyingParty
) -> None:
    response = browser.authorize(web_rp.auth_request(code_challenge_method="plain", state="s1").params)

    assert location(response).startswith(CALLBACK + "?")
    assert redirect_params(response) == {
        "error": "invalid_request",
        "error_description": "Unsupported 'code_challenge_method': only 'S256' is accepted.",
        "state": "s1",
        "iss": ISSUER,
    }


# PKCE --------------------------------------------------------------------------------------------------


def test_pkce_s256_is_required_for_public_clients(browser: Browser, spa_rp: RelyingParty) -> None:
    without = browser.authorize(spa_rp.auth_request(pkce=False).params)
    request, code = sign_in_for_code(browser, spa_rp)
    no_verifier = spa_rp.exchange(request, code, code_verifier=None)

    assert redirect_params(without)["error"] == "invalid_request"
    assert no_verifier.status_code == 400
    assert no_verifier.json()["error"] == "invalid_request"


def test_plain_pkce_is_refused(
    http: TestClient, browser: Browser, spa_rp: RelyingParty, web_rp: RelyingParty
) -> None:
    for rp in (spa_rp, web_rp):
        request = rp.auth_request()
        request.params.update(code_challenge="x" * 43, code_challenge_method="plain")

        response = browser.authorize(request.params)

        assert redirect_params(response)["error"] == "invalid_request"
    assert http.get("/.well-known/openid-configuration").json()["code_challenge_methods_supported"] == [
        "S256"
    ]


# Client secrets ----------------------------------------------------------------------------------------


def test_client_secrets_are_compared_against_a_hash(
    provider: Provider, m2m: RegisteredClient, m2m_rp: RelyingParty
) -> None:
    assert m2m.secret is not None
    digest = hashlib.sha256(m2m.secret.encode()).digest()
    served = provider.registry.get(m2m.client_id)
    assert served is not None

    kept = [value for field in dataclasses.fields(served) for value in [getattr(served, field.name)]]

    assert m2m.secret not in repr(kept)
    assert served.secret_hashes == ((digest, None),)
    assert client_credentials(m2m_rp, m2m.secret) == 200
    assert client_credentials(m2m_rp, digest.hex()) == 401
    assert client_credentials(m2m_rp, base64.b64encode(digest).decode()) == 401
    assert client_credentials(m2m_rp, m2m.secret[:-1]) == 401
    assert client_credentials(m2m_rp, m2m.secret + "x") == 401


def test_the_previous_secret_is_rejected_at_once_after_rotation(
    provider: Provider, m2m: RegisteredClient, m2m_rp: RelyingParty
) -> None:
    assert m2m.secret is not None
    assert client_credentials(m2m_rp, m2m.secret) == 200

    provider.registry.upsert_secret(rotated(m2m, "the-new-secret"))

    response = m2m_rp.token({"grant_type": "client_credentials"}, secret=m2m.secret)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert client_credentials(m2m_rp, "the-new-secret") == 200


def test_a_rotation_refuses_the_previous_secret_at_every_endpoint(
    provider: Provider, browser: Browser, web: RegisteredClient, web_rp: RelyingParty
) -> None:
    assert web.secret is not None
    request, code = sign_in_for_code(browser, web_rp)
    tokens = web_rp.exchange(request, code).json()

    provider.registry.upsert_secret(rotated(web, "the-new-secret"))

    assert web_rp.refresh(tokens["refresh_token"]).status_code == 401
    assert web_rp.introspect(tokens["access_token"]).status_code == 401
    assert web_rp.revoke(tokens["refresh_token"]).status_code == 401
    assert web_rp.post("/introspect", {"token": tokens["access_token"]}, secret="the-new-secret").json()[
        "active"
    ]


def test_a_grace_period_keeps_the_previous_secret_valid_until_it_ends(
    provider: Provider, m2m: RegisteredClient, m2m_rp: RelyingParty
) -> None:
    assert m2m.secret is not None
    until = datetime.now(UTC) + timedelta(minutes=10)

    provider.registry.upsert_secret(rotated(m2m, "the-new-secret", **grace(m2m.secret, until)))

    assert client_credentials(m2m_rp, m2m.secret) == 200
    assert client_credentials(m2m_rp, "the-new-secret") == 200


def test_a_grace_period_that_has_ended_refuses_the_previous_secret(
    provider: Provider, m2m: RegisteredClient, m2m_rp: RelyingParty
) -> None:
    assert m2m.secret is not None
    ended = datetime.now(UTC) - timedelta(seconds=1)

    provider.registry.upsert_secret(rotated(m2m, "the-new-secret", **grace(m2m.secret, ended)))

    assert client_credentials(m2m_rp, m2m.secret) == 401
    assert client_credentials(m2m_rp, "the-new-secret") == 200


def test_a_grace_period_keeps_only_the_previous_secret(
    provider: Provider, m2m: RegisteredClient, m2m_rp: RelyingParty
) -> None:
    assert m2m.secret is not None
    until = datetime.now(UTC) + timedelta(minutes=10)
    provider.registry.upsert_secret(rotated(m2m, "second", **grace(m2m.secret, until)))

    provider.registry.upsert_secret(rotated(m2m, "third", **grace("second", until)))

    assert client_credentials(m2m_rp, m2m.secret) == 401
    assert client_credentials(m2m_rp, "second") == 200
    assert client_credentials(m2m_rp, "third") == 200


def test_a_deleted_client_is_refused_at_once(
    provider: Provider, m2m: RegisteredClient, m2m_rp: RelyingParty
) -> None:
    assert m2m.secret is not None

    provider.registry.delete_oidcclient(m2m.objects[0])

    assert client_credentials(m2m_rp, m2m.secret) == 401


def test_client_secrets_codes_tokens_and_passwords_are_never_logged(
    caplog: pytest.LogCaptureFixture,
    make_provider: Callable[..., Provider],
    serve: Callable[..., Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = make_provider()
    web = register(
        provider.registry, "web-app", post_logout_redirect_uris=["https://web-app.example.com/out"]
    )
    m2m = register(provider.registry, "billing", grant_types=["client_credentials"], scopes=["invoices:read"])
    poster = register(
        provider.registry,
        "poster",
        grant_types=["client_credentials"],
        scopes=["a"],
        auth_method="client_secret_post",
    )
    secrets: list[str] = [PASSWORD, "wrong-password", "wrong-secret"]
    secrets += [client.secret for client in (web, m2m, poster) if client.secret]

    with serve(provider) as http:
        browser, web_rp = Browser(http, ISSUER), RelyingParty(http, web)
        request = web_rp.auth_request()
        page = browser.get(location(browser.authorize(request.params)))
        browser.login(page, "alice", "wrong-password")
        code = code_of(browser.finish(browser.login(page)))
        secrets += [code, hidden(page.text, "csrf_token"), browser.session_cookie or ""]
        tokens = web_rp.exchange(request, code).json()
        web_rp.exchange(request, code)  # a replay: logged as a warning
        request, second_code = sign_in_for_code(browser, web_rp)
        second = web_rp.exchange(request, second_code).json()
        refreshed = web_rp.refresh(second["refresh_token"]).json()
        web_rp.refresh(second["refresh_token"])  # a reuse: logged as a warning
        http.get("/userinfo", headers=bearer(refreshed["access_token"]))
        web_rp.introspect(refreshed["access_token"])
        web_rp.revoke(refreshed["access_token"])
        for client in (m2m, poster):
            rp = RelyingParty(http, client)
            secrets.append(rp.token({"grant_type": "client_credentials"}).json()["access_token"])
            rp.token({"grant_type": "client_credentials"}, secret="wrong-secret")
        http.post("/logout", data={"id_token_hint": refreshed["id_token"]})
        secrets += [second_code, *tokens.values(), *second.values(), *refreshed.values()]

    secrets = [value for value in secrets if isinstance(value, str) and len(value) >= 8]
    logged = [record.getMessage() + (record.exc_text or "") for record in caplog.records]
    assert any("replayed" in message for message in logged), "the log capture saw nothing"
    for message in logged:
        for secret in secrets:
            assert secret not in message
    assert logging.getLogger("authlib").getEffectiveLevel() >= logging.INFO


# Browser-facing rules ----------------------------------------------------------------------------------


def test_login_and_consent_forms_carry_csrf_tokens(browser: Browser, web_rp: RelyingParty) -> None:
    request = web_rp.auth_request()
    page = browser.get(location(browser.authorize(request.params)))
    csrf = hidden(page.text, "csrf_token")
    interaction = hidden(page.text, "interaction")

    missing = browser.http.post(
        "/login", data={"interaction": interaction, "username": "alice", "password": PASSWORD}
    )
    wrong = browser.login(page, csrf_token="forged")
    assert missing.status_code == 403
    assert wrong.status_code == 403
    assert location(browser.get(f"/authorize/resume?interaction={interaction}")).startswith(f"{ISSUER}/login")

    consent_page = browser.get(location(browser.get(location(browser.login(page)))))
    assert hidden(consent_page.text, "csrf_token")
    assert hidden(consent_page.text, "csrf_token") != csrf  # a new session, a new token
    assert browser.consent(consent_page, csrf_token=csrf).status_code == 403
    assert browser.consent(consent_page).status_code == 303


def test_session_cookies_are_httponly_samesite_lax_and_not_secure_on_loopback(
    browser: Browser, web_rp: RelyingParty
) -> None:
    response = browser.authorize(web_rp.auth_request().params)

    cookie = response.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert "httponly" in attributes
    assert "samesite=lax" in cookie.lower()
    assert "secure" not in attributes
    assert "path=/" in cookie.lower()


def test_session_cookies_are_secure_when_the_issuer_is_not_on_loopback(
    make_provider: Callable[..., Provider], serve: Callable[..., Any]
) -> None:
    issuer = "https://login.example.com"
    provider = make_provider(issuer=issuer)
    client = register(provider.registry, "web-app")
    with serve(provider) as http:
        browser, rp = Browser(http, issuer), RelyingParty(http, client)
        request = rp.auth_request()
        first = browser.authorize(request.params)
        page = browser.get(location(first))
        after_login = browser.login(page)
        code = code_of(browser.finish(after_login))
        tokens = rp.exchange(request, code).json()

    for response in (first, after_login):
        cookie = response.headers["set-cookie"]
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"secure", "httponly"} <= attributes
        assert "samesite=lax" in cookie.lower()
    assert provider.keys.verify(tokens["id_token"])["iss"] == issuer


def test_pages_forbid_framing(browser: Browser, web_rp: RelyingParty) -> None:
    login = browser.get(location(browser.authorize(web_rp.auth_request().params)))
    consent = browser.get(location(browser.get(location(browser.login(login)))))
    error = browser.authorize({"response_type": "code", "client_id": "nobody", "redirect_uri": CALLBACK})
    logout = browser.get("/logout")

    for page in (login, consent, error, logout):
        assert page.headers["content-type"].startswith("text/html")
        assert_framing_forbidden(page)
        assert page.headers["x-content-type-options"] == "nosniff"


def test_failed_logins_are_rate_limited(
    make_provider: Callable[..., Provider], serve: Callable[..., Any]
) -> None:
    provider = make_provider(login_attempts=3)
    client = register(provider.registry, "web-app")
    with serve(provider) as http:
        browser = Browser(http, ISSUER)
        page = browser.get(location(browser.authorize(RelyingParty(http, client).auth_request().params)))
        failures = [browser.login(page, "alice", f"guess-{n}").status_code for n in range(3)]

        throttled = browser.login(page, "alice", PASSWORD)

    assert failures == [401, 401, 401]
    assert throttled.status_code == 429
    assert "location" not in throttled.headers
