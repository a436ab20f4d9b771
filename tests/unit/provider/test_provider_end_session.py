"""RP-Initiated Logout 1.0: ending the browser's session, and where the browser may go afterwards."""

from __future__ import annotations

import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from kubeoidc_provider.context import Provider
from support.provider import ISSUER, register
from support.provider_flow import (
    SESSION_COOKIE,
    Browser,
    RelyingParty,
    hidden,
    location,
    page_text,
    redirect_params,
    redirect_target,
    sign_in_for_tokens,
)

LOGOUT_URI = "https://web-app.example.com/signed-out"


@pytest.fixture
def id_token(browser: Browser, web_rp: RelyingParty) -> str:
    token: str = sign_in_for_tokens(browser, web_rp)["id_token"]
    return token


def assert_signed_out(browser: Browser, web_rp: RelyingParty) -> None:
    """The next authorization request needs a login again."""
    response = browser.authorize(web_rp.auth_request().params)
    assert redirect_target(response) == f"{ISSUER}/login"


def assert_signed_in(browser: Browser, web_rp: RelyingParty) -> None:
    response = browser.authorize(web_rp.auth_request().params)
    assert "code" in redirect_params(response)


def assert_cookie_cleared(response: Any) -> None:
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "Max-Age=0" in cookie or "expires=Thu, 01 Jan 1970" in cookie.lower()


def test_a_valid_hint_and_a_registered_uri_sign_out_and_go_back_with_the_state(
    browser: Browser, web_rp: RelyingParty, id_token: str
) -> None:
    response = browser.get(
        f"/logout?id_token_hint={id_token}&post_logout_redirect_uri={LOGOUT_URI}&state=bye"
    )

    assert response.status_code == 303
    assert redirect_target(response) == LOGOUT_URI
    assert redirect_params(response) == {"state": "bye"}
    assert response.headers["cache-control"] == "no-store"
    assert_cookie_cleared(response)
    assert_signed_out(browser, web_rp)


def test_logout_accepts_a_posted_form(browser: Browser, web_rp: RelyingParty, id_token: str) -> None:
    response = browser.http.post(
        "/logout",
        data={"id_token_hint": id_token, "post_logout_redirect_uri": LOGOUT_URI},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert location(response) == LOGOUT_URI
    assert_signed_out(browser, web_rp)


def test_an_expired_id_token_is_still_a_valid_hint(
    browser: Browser, web_rp: RelyingParty, provider: Provider
) -> None:
    sign_in_for_tokens(browser, web_rp)
    now = int(time.time())
    expired = provider.keys.sign(
        {
            "iss": ISSUER,
            "sub": "7b0c2f6e-alice",
            "aud": web_rp.client_id,
            "iat": now - 7200,
            "exp": now - 3600,
        }
    )

    response = browser.get(f"/logout?id_token_hint={expired}&post_logout_redirect_uri={LOGOUT_URI}")

    assert response.status_code == 303
    assert location(response) == LOGOUT_URI


UNREGISTERED = (
    "The 'post_logout_redirect_uri' is not registered for this client: it must be one of its "
    "postLogoutRedirectURIs, exactly."
)


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example.com/",
        LOGOUT_URI + "/",
        LOGOUT_URI + "?next=https://evil.example.com",
        "https://web-app.example.com/callback",
    ],
)
def test_op_rpinitlogout_unregistered_post_logout_redirect_uri(
    browser: Browser, web_rp: RelyingParty, id_token: str, uri: str
) -> None:
    """OP-RpInitLogout-Unregistered-post_logout_redirect_uri: an error page that says so; nobody is
    signed out and nothing is redirected."""
    response = browser.http.get(
        "/logout",
        params={"id_token_hint": id_token, "post_logout_redirect_uri": uri, "state": "s"},
        follow_redirects=False,
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert UNREGISTERED in page_text(response)
    assert "set-cookie" not in response.headers
    assert_signed_in(browser, web_rp)


@pytest.mark.parametrize(
    "uri", ["signed-out", "/signed-out", LOGOUT_URI + "#top", "https://web-app.example.com/a b", "https:"]
)
def test_a_malformed_post_logout_redirect_uri_is_an_error_page_and_signs_nobody_out(
    browser: Browser, web_rp: RelyingParty, id_token: str, uri: str
) -> None:
    response = browser.http.get(
        "/logout", params={"id_token_hint": id_token, "post_logout_redirect_uri": uri}, follow_redirects=False
    )

    assert response.status_code == 400
    assert "The 'post_logout_redirect_uri' is not an absolute URI." in page_text(response)
    assert_signed_in(browser, web_rp)


def test_a_post_logout_redirect_uri_naming_no_client_is_an_error_page(
    browser: Browser, web_rp: RelyingParty, id_token: str
) -> None:
    response = browser.http.get("/logout", params={"post_logout_redirect_uri": LOGOUT_URI})

    assert response.status_code == 400
    assert "send the 'client_id' or an 'id_token_hint'" in page_text(response)
    assert_signed_in(browser, web_rp)


def test_an_unknown_client_id_is_an_error_page(browser: Browser, web_rp: RelyingParty, id_token: str) -> None:
    response = browser.http.get("/logout", params={"client_id": "nobody-at-all"})

    assert response.status_code == 400
    assert "The 'client_id' is not a client of this provider." in page_text(response)
    assert_signed_in(browser, web_rp)


def test_a_hint_issued_to_no_client_of_this_provider_is_an_error_page(
    browser: Browser, web_rp: RelyingParty, provider: Provider, id_token: str
) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "7b0c2f6e-alice", "iat": now, "exp": now + 60}
    for audience in ("someone-else", ["someone-else", "another"]):
        hint = provider.keys.sign({**claims, "aud": audience})

        response = browser.http.get("/logout", params={"id_token_hint": hint})

        assert response.status_code == 400
        assert "The 'id_token_hint' was not issued to a client of this provider." in page_text(response)
    assert_signed_in(browser, web_rp)


def test_a_valid_hint_without_a_uri_shows_the_signed_out_page(
    browser: Browser, web_rp: RelyingParty, id_token: str
) -> None:
    response = browser.get(f"/logout?id_token_hint={id_token}")

    assert response.status_code == 200
    assert "You are signed out" in page_text(response)
    assert_cookie_cleared(response)
    assert_signed_out(browser, web_rp)


def test_without_a_hint_the_user_confirms_first(
    browser: Browser, web_rp: RelyingParty, id_token: str
) -> None:
    page = browser.get(f"/logout?client_id={web_rp.client_id}&post_logout_redirect_uri={LOGOUT_URI}")

    assert page.status_code == 200
    assert "Sign out?" in page_text(page)
    assert "Web App" in page_text(page)  # the client that asks
    assert hidden(page.text, "csrf_token")
    assert hidden(page.text, "post_logout_redirect_uri") == LOGOUT_URI
    assert_signed_in(browser, web_rp)


def test_confirming_another_users_hint_signs_out_and_goes_back_with_the_state(
    browser: Browser, web_rp: RelyingParty, id_token: str
) -> None:
    with browser.elsewhere() as other:
        bobs_hint = sign_in_for_tokens(other, web_rp, username="bob")["id_token"]
    page = browser.get(f"/logout?id_token_hint={bobs_hint}&post_logout_redirect_uri={LOGOUT_URI}&state=bye")

    response = browser.http.post(
        "/logout",
        data={
            "csrf_token": hidden(page.text, "csrf_token"),
            "confirm": "yes",
            "id_token_hint": hidden(page.text, "id_token_hint"),
            "post_logout_redirect_uri": hidden(page.text, "post_logout_redirect_uri"),
            "state": hidden(page.text, "state"),
        },
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert redirect_target(response) == LOGOUT_URI
    assert redirect_params(response) == {"state": "bye"}
    assert_signed_out(browser, web_rp)


def test_a_confirmation_carrying_an_unregistered_uri_is_refused_and_signs_nobody_out(
    browser: Browser, web_rp: RelyingParty, id_token: str
) -> None:
    page = browser.get("/logout")

    response = browser.http.post(
        "/logout",
        data={
            "csrf_token": hidden(page.text, "csrf_token"),
            "confirm": "yes",
            "client_id": web_rp.client_id,
            "post_logout_redirect_uri": "https://evil.example.com/",
        },
    )

    assert response.status_code == 400
    assert UNREGISTERED in page_text(response)
    assert_signed_in(browser, web_rp)


def test_confirming_without_a_hint_signs_out_and_stays_on_the_provider(
    browser: Browser, web_rp: RelyingParty, id_token: str
) -> None:
    page = browser.get("/logout")

    response = browser.http.post(
        "/logout",
        data={"csrf_token": hidden(page.text, "csrf_token"), "confirm": "yes"},
        follow_redirects=False,
    )

    assert response.status_code == 200
    assert "You are signed out" in page_text(response)
    assert_cookie_cleared(response)
    assert_signed_out(browser, web_rp)


def test_confirming_with_a_wrong_csrf_token_is_refused(
    browser: Browser, web_rp: RelyingParty, id_token: str
) -> None:
    response = browser.http.post("/logout", data={"csrf_token": "forged", "confirm": "yes"})

    assert response.status_code == 403
    assert_signed_in(browser, web_rp)


def test_confirming_without_a_csrf_token_is_refused(
    browser: Browser, web_rp: RelyingParty, id_token: str
) -> None:
    response = browser.http.post("/logout", data={"confirm": "yes"})

    assert response.status_code == 403
    assert_signed_in(browser, web_rp)


def test_logout_without_a_session_or_hint_just_says_signed_out(http: TestClient) -> None:
    response = http.get("/logout")

    assert response.status_code == 200
    assert "You are signed out" in page_text(response)


@pytest.mark.parametrize(
    "hint",
    ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "eyJhbGciOiJhXCJiIn0.e30.AAAA"],
)
def test_an_invalid_hint_shows_an_error_page_and_signs_nobody_out(
    browser: Browser, web_rp: RelyingParty, id_token: str, hint: str
) -> None:
    response = browser.http.get(
        "/logout",
        params={"id_token_hint": hint, "post_logout_redirect_uri": LOGOUT_URI},
        follow_redirects=False,
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "The 'id_token_hint' is not an ID token issued by this provider." in page_text(response)
    assert_signed_in(browser, web_rp)


def test_an_access_token_is_not_an_id_token_hint(browser: Browser, web_rp: RelyingParty) -> None:
    access_token = sign_in_for_tokens(browser, web_rp)["access_token"]

    response = browser.get(f"/logout?id_token_hint={access_token}&post_logout_redirect_uri={LOGOUT_URI}")

    assert response.status_code == 400
    assert_signed_in(browser, web_rp)


def test_a_hint_from_another_issuer_is_refused(
    browser: Browser, web_rp: RelyingParty, provider: Provider
) -> None:
    sign_in_for_tokens(browser, web_rp)
    now = int(time.time())
    foreign = provider.keys.sign(
        {
            "iss": "https://elsewhere.example.com",
            "sub": "x",
            "aud": web_rp.client_id,
            "iat": now,
            "exp": now + 60,
        }
    )

    response = browser.get(f"/logout?id_token_hint={foreign}&post_logout_redirect_uri={LOGOUT_URI}")

    assert response.status_code == 400
    assert_signed_in(browser, web_rp)


def test_a_client_id_that_is_not_the_hints_audience_is_refused(
    browser: Browser, web_rp: RelyingParty, spa_rp: RelyingParty, id_token: str
) -> None:
    response = browser.get(
        f"/logout?id_token_hint={id_token}&client_id={spa_rp.client_id}&post_logout_redirect_uri={LOGOUT_URI}"
    )

    assert response.status_code == 400
    assert "location" not in response.headers
    assert "'client_id' does not match 'aud' claim" in page_text(response)
    assert_signed_in(browser, web_rp)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_hints_signed_with_ec_and_okp_keys_are_accepted(make_provider: Any, serve: Any, alg: str) -> None:
    provider = make_provider(alg=alg)
    client = register(provider.registry, "web-app", post_logout_redirect_uris=[LOGOUT_URI])
    with serve(provider) as http:
        browser = Browser(http, ISSUER)
        id_token = sign_in_for_tokens(browser, RelyingParty(http, client))["id_token"]

        response = browser.get(f"/logout?id_token_hint={id_token}&post_logout_redirect_uri={LOGOUT_URI}")

    assert response.status_code == 303
    assert location(response) == LOGOUT_URI


def test_logout_pages_forbid_framing(http: TestClient) -> None:
    response = http.get("/logout")

    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"


def test_another_users_hint_asks_before_signing_out(
    browser: Browser, web_rp: RelyingParty, id_token: str
) -> None:
    with browser.elsewhere() as other:
        bobs_hint = sign_in_for_tokens(other, web_rp, username="bob")["id_token"]

    page = browser.get(f"/logout?id_token_hint={bobs_hint}&post_logout_redirect_uri={LOGOUT_URI}")

    assert page.status_code == 200
    assert "Sign out?" in page_text(page)
    assert "location" not in page.headers
    assert_signed_in(browser, web_rp)


def test_logout_hint_and_ui_locales_are_accepted_beside_the_hint_client_id_and_state(
    browser: Browser, web_rp: RelyingParty, id_token: str
) -> None:
    response = browser.http.get(
        "/logout",
        params={
            "id_token_hint": id_token,
            "client_id": web_rp.client_id,
            "logout_hint": "alice",
            "ui_locales": "fr-CA fr en",
            "post_logout_redirect_uri": LOGOUT_URI,
            "state": "bye",
        },
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert redirect_params(response) == {"state": "bye"}
    assert_signed_out(browser, web_rp)
