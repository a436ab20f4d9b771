"""The login and consent pages: passwords, throttling, CSRF, the session cookie and who may continue."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest

from kubeoidc_provider.context import Provider
from support.provider import ISSUER, PASSWORD, RegisteredClient, register
from support.provider_flow import (
    SESSION_COOKIE,
    Browser,
    RelyingParty,
    code_of,
    hidden,
    location,
    page_text,
    redirect_target,
)

WRONG_PASSWORD = "The username or password is incorrect."
TOO_MANY = "Too many failed sign-in attempts. Wait a few minutes, then try again."
EXPIRED = "This sign-in request has expired"


def login_page(browser: Browser, rp: RelyingParty, **options: Any) -> httpx.Response:
    page = browser.get(location(browser.authorize(rp.auth_request(**options).params)))
    assert page.status_code == 200
    return page


def assert_not_signed_in(browser: Browser, page: httpx.Response) -> None:
    """Resuming the request sends the browser back to the login page: nobody is signed in."""
    interaction = hidden(page.text, "interaction")
    resume = browser.get(f"/authorize/resume?interaction={interaction}")
    assert resume.status_code == 303
    assert redirect_target(resume) == f"{ISSUER}/login"


# Passwords -------------------------------------------------------------------------------------------


def test_a_wrong_password_shows_the_login_page_again_with_a_message(
    browser: Browser, web_rp: RelyingParty
) -> None:
    page = login_page(browser, web_rp)

    response = browser.login(page, "alice", "not the password")

    assert response.status_code == 401
    assert WRONG_PASSWORD in page_text(response)
    assert 'value="alice"' in response.text
    assert_not_signed_in(browser, page)


def test_an_unknown_user_gets_the_same_message_as_a_wrong_password(
    browser: Browser, web_rp: RelyingParty
) -> None:
    page = login_page(browser, web_rp)

    response = browser.login(page, "mallory", PASSWORD)

    assert response.status_code == 401
    assert WRONG_PASSWORD in page_text(response)


def test_the_right_password_goes_on_to_consent(browser: Browser, web_rp: RelyingParty) -> None:
    response = browser.login(login_page(browser, web_rp))

    assert response.status_code == 303
    resume = browser.get(location(response))
    assert redirect_target(resume) == f"{ISSUER}/consent"


# Throttling ------------------------------------------------------------------------------------------


@dataclass
class Strict:
    """A provider allowing two failed logins per user (eight per address) in a minute."""

    browser: Browser
    rp: RelyingParty


@pytest.fixture
def strict(make_provider: Callable[..., Provider], serve: Callable[..., Any]) -> Iterator[Strict]:
    provider = make_provider(login_attempts=2, login_window=60)
    client = register(provider.registry, "web-app")
    with serve(provider) as http:
        yield Strict(Browser(http, ISSUER), RelyingParty(http, client))


def test_after_the_allowed_failures_even_the_right_password_is_refused(strict: Strict) -> None:
    browser, rp = strict.browser, strict.rp
    page = login_page(browser, rp)
    for _ in range(2):
        assert browser.login(page, "alice", "guess").status_code == 401

    response = browser.login(page, "alice", PASSWORD)

    assert response.status_code == 429
    assert TOO_MANY in page_text(response)
    assert_not_signed_in(browser, page)


def test_failures_for_one_user_do_not_lock_out_another(strict: Strict) -> None:
    browser, rp = strict.browser, strict.rp
    page = login_page(browser, rp)
    for _ in range(3):
        browser.login(page, "alice", "guess")

    assert browser.login(page, "bob", PASSWORD).status_code == 303


def test_failures_from_one_address_over_many_users_are_throttled_too(strict: Strict) -> None:
    browser, rp = strict.browser, strict.rp
    page = login_page(browser, rp)
    for number in range(8):
        assert browser.login(page, f"user{number}", "guess").status_code == 401

    response = browser.login(page, "alice", PASSWORD)

    assert response.status_code == 429


def test_successful_logins_from_one_address_are_never_throttled(strict: Strict) -> None:
    """Behind an office NAT or an ingress many people share an address: only failures count."""
    browser, rp = strict.browser, strict.rp
    for _ in range(12):
        page = login_page(browser, rp, prompt="login")
        assert browser.login(page, "alice", PASSWORD).status_code == 303


def test_the_throttle_lifts_when_the_window_ends(strict: Strict, clock: Any) -> None:
    browser, rp = strict.browser, strict.rp
    page = login_page(browser, rp)
    for _ in range(3):
        browser.login(page, "alice", "guess")

    clock.advance(61)

    assert browser.login(page, "alice", PASSWORD).status_code == 303


def test_a_successful_login_forgets_the_users_earlier_failures(strict: Strict) -> None:
    browser, rp = strict.browser, strict.rp
    page = login_page(browser, rp)
    assert browser.login(page, "alice", "guess").status_code == 401
    assert browser.login(page, "alice", PASSWORD).status_code == 303
    again = login_page(browser, rp, prompt="login")

    assert browser.login(again, "alice", "guess").status_code == 401
    assert browser.login(again, "alice", PASSWORD).status_code == 303


# Session ---------------------------------------------------------------------------------------------


def test_login_starts_a_new_session_id(browser: Browser, web_rp: RelyingParty) -> None:
    page = login_page(browser, web_rp)
    before = browser.session_cookie

    response = browser.login(page)

    after = response.cookies.get(SESSION_COOKIE)
    assert before is not None
    assert after is not None
    assert after != before


def test_the_session_id_from_before_login_is_worth_nothing_after_it(
    browser: Browser, web_rp: RelyingParty
) -> None:
    page = login_page(browser, web_rp)
    before = browser.session_cookie
    assert before is not None
    resume_url = location(browser.login(page))

    browser.http.cookies = httpx.Cookies({SESSION_COOKIE: before})
    response = browser.get(resume_url)

    assert response.status_code == 400
    assert EXPIRED in page_text(response)


def test_a_signed_in_session_is_remembered_across_requests(browser: Browser, web_rp: RelyingParty) -> None:
    browser.sign_in(web_rp.auth_request().params)

    response = browser.authorize(web_rp.auth_request().params)

    assert code_of(response)


def test_the_session_cookie_is_scoped_to_the_issuers_path(
    make_provider: Callable[..., Provider], serve: Callable[..., Any]
) -> None:
    provider = make_provider(issuer="http://127.0.0.1:8080/oidc")
    client = register(provider.registry, "web-app")
    with serve(provider) as http:
        response = Browser(http, provider.settings.issuer).authorize(
            RelyingParty(http, client).auth_request().params
        )

    assert "Path=/oidc" in response.headers["set-cookie"]
    assert location(response).startswith("http://127.0.0.1:8080/oidc/login?")


def test_a_session_ends_when_its_time_is_up(browser: Browser, web_rp: RelyingParty, clock: Any) -> None:
    browser.sign_in(web_rp.auth_request().params)

    clock.advance(86400 + 1)

    response = browser.authorize(web_rp.auth_request().params)
    assert redirect_target(response) == f"{ISSUER}/login"


# Interactions belong to the browser that started them ---------------------------------------------------


def test_another_browser_cannot_open_the_login_page_of_an_interaction(
    browser: Browser, web_rp: RelyingParty
) -> None:
    url = location(browser.authorize(web_rp.auth_request().params))

    with browser.elsewhere():
        response = browser.get(url)

    assert response.status_code == 400
    assert EXPIRED in page_text(response)


def test_another_browser_with_its_own_session_cannot_sign_in_to_an_interaction(
    browser: Browser, web_rp: RelyingParty
) -> None:
    page = login_page(browser, web_rp)

    with browser.elsewhere():
        own = login_page(browser, web_rp)
        response = browser.login(
            page, interaction=hidden(page.text, "interaction"), csrf_token=hidden(own.text, "csrf_token")
        )

    assert response.status_code == 400
    assert EXPIRED in page_text(response)
    assert_not_signed_in(browser, page)


def test_another_browser_cannot_resume_an_interaction(browser: Browser, web_rp: RelyingParty) -> None:
    resume_url = location(browser.login(login_page(browser, web_rp)))

    with browser.elsewhere():
        response = browser.get(resume_url)

    assert response.status_code == 400
    assert "location" not in response.headers


def test_an_unknown_interaction_shows_an_expired_page(browser: Browser, web_rp: RelyingParty) -> None:
    login_page(browser, web_rp)

    for url in ("/login?interaction=nope", "/consent?interaction=nope", "/authorize/resume?interaction=nope"):
        response = browser.get(url)
        assert response.status_code == 400, url
        assert EXPIRED in page_text(response)


def test_an_interaction_expires_after_ten_minutes(browser: Browser, web_rp: RelyingParty, clock: Any) -> None:
    page = login_page(browser, web_rp)

    clock.advance(601)

    assert browser.get(f"/login?interaction={hidden(page.text, 'interaction')}").status_code == 400


# Consent ---------------------------------------------------------------------------------------------


def consent_page(browser: Browser, rp: RelyingParty) -> httpx.Response:
    resume = browser.get(location(browser.login(login_page(browser, rp))))
    page = browser.get(location(resume))
    assert page.status_code == 200
    return page


def test_the_consent_page_is_not_shown_before_login(browser: Browser, web_rp: RelyingParty) -> None:
    page = login_page(browser, web_rp)

    response = browser.get(f"/consent?interaction={hidden(page.text, 'interaction')}")

    assert response.status_code == 400
    assert EXPIRED in page_text(response)


def test_consent_cannot_be_given_before_login(browser: Browser, web_rp: RelyingParty) -> None:
    page = login_page(browser, web_rp)

    response = browser.consent(page)

    assert response.status_code == 400


def test_consent_with_a_wrong_csrf_token_is_refused(browser: Browser, web_rp: RelyingParty) -> None:
    page = consent_page(browser, web_rp)

    response = browser.consent(page, csrf_token="forged")

    assert response.status_code == 403
    assert "The form has expired" in page_text(response)
    assert redirect_target(browser.authorize(web_rp.auth_request().params)) == f"{ISSUER}/consent"


def test_consent_from_another_browser_is_refused(browser: Browser, web_rp: RelyingParty) -> None:
    page = consent_page(browser, web_rp)

    with browser.elsewhere():
        response = browser.consent(page)

    assert response.status_code == 400


def test_the_consent_page_of_a_client_with_a_custom_scope_names_the_scope(
    browser: Browser, provider: Provider
) -> None:
    client = register(provider.registry, "reports", scopes=["openid", "reports:read"])
    rp = RelyingParty(browser.http, client)
    page = browser.get(location(browser.authorize(rp.auth_request(scope="openid reports:read").params)))
    page = browser.get(location(browser.get(location(browser.login(page)))))

    assert 'data-scope="reports:read"' in page.text


def test_a_public_client_gets_the_same_login_and_consent(browser: Browser, spa: RegisteredClient) -> None:
    rp = RelyingParty(browser.http, spa)
    request = rp.auth_request()

    response = browser.sign_in(request.params)

    assert rp.exchange(request, code_of(response)).status_code == 200
