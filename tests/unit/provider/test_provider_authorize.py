"""The authorization endpoint (RFC 6749 §4.1, OIDC Core §3.1.2): errors, prompts, login and consent.

The exact comparison of redirect URIs and the cases that must never redirect are proven in the
security rules' tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest

from kubeoidc_provider.context import Provider
from support.provider import ISSUER, RegisteredClient, register
from support.provider_flow import (
    Browser,
    RelyingParty,
    code_of,
    location,
    page_text,
    redirect_params,
    redirect_target,
    sign_in_for_code,
)

CALLBACK = "https://web-app.example.com/callback"
REDIRECT_URI_REFUSED = "The 'redirect_uri' is not one of the client's registered redirect URIs."


def assert_error_page(response: Any, status: int = 400) -> None:
    """An error shown to the user, never a redirect."""
    assert response.status_code == status
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def assert_redirected_error(
    response: Any, rp: RelyingParty, error: str, state: str = "af0ifjsldkj"
) -> dict[str, str]:
    assert response.status_code == 302
    assert redirect_target(response) == rp.client.redirect_uri
    params = redirect_params(response)
    assert params["error"] == error
    assert params["state"] == state
    assert params["iss"] == ISSUER
    assert "code" not in params
    return params


def sign_in(browser: Browser, rp: RelyingParty, **options: str) -> None:
    """Log alice in and consent to the default scopes, leaving the session in the browser."""
    sign_in_for_code(browser, rp, **options)


# Errors before the redirect URI is trusted: an error page --------------------------------------------


def test_an_unknown_client_gets_an_error_page_and_no_redirect(browser: Browser) -> None:
    response = browser.authorize(
        {"response_type": "code", "client_id": "nobody", "redirect_uri": CALLBACK, "state": "s"}
    )

    assert_error_page(response)
    assert "invalid_client" in response.text
    assert "The client does not exist on this server." in response.text


def test_a_request_without_a_client_id_gets_an_error_page(browser: Browser) -> None:
    response = browser.authorize({"response_type": "code", "redirect_uri": CALLBACK})

    assert_error_page(response)
    assert "Missing 'client_id' parameter." in page_text(response)


@pytest.mark.parametrize(
    "redirect_uri", ['https://web-app.example.com/"', "https://web-app.example.com/café"]
)
def test_a_redirect_uri_with_characters_an_error_cannot_carry_gets_an_error_page(
    browser: Browser, web_rp: RelyingParty, redirect_uri: str
) -> None:
    response = browser.authorize(web_rp.auth_request(redirect_uri=redirect_uri).params)

    assert_error_page(response)
    assert REDIRECT_URI_REFUSED in page_text(response)


def test_a_missing_redirect_uri_gets_an_error_page_even_with_one_registered_uri(
    browser: Browser, web_rp: RelyingParty
) -> None:
    params = web_rp.auth_request().params
    del params["redirect_uri"]

    response = browser.authorize(params)

    assert_error_page(response)
    assert "Missing 'redirect_uri' in request." in page_text(response)


def test_a_repeated_parameter_gets_an_error_page(browser: Browser, web_rp: RelyingParty) -> None:
    params = web_rp.auth_request().params
    query = [*params.items(), ("redirect_uri", "https://evil.example.com/callback")]

    response = browser.http.get("/authorize", params=tuple(query), follow_redirects=False)

    assert_error_page(response)
    assert "Multiple 'redirect_uri' in request." in page_text(response)


def test_an_unsupported_response_type_with_a_bad_redirect_uri_gets_an_error_page(
    browser: Browser, web_rp: RelyingParty
) -> None:
    request = web_rp.auth_request(response_type="token", redirect_uri="https://evil.example.com/cb")

    assert_error_page(browser.authorize(request.params))


# Errors after the redirect URI is trusted: back to the client with error, state and iss -------------


def test_a_missing_response_type_goes_back_with_invalid_request(
    browser: Browser, web_rp: RelyingParty
) -> None:
    params = web_rp.auth_request().params
    del params["response_type"]

    answer = assert_redirected_error(browser.authorize(params), web_rp, "invalid_request")

    assert answer["error_description"] == "Missing 'response_type' parameter."


@pytest.mark.parametrize("response_type", ["token", "code id_token", 'co"de', "cödé"])
def test_any_response_type_but_code_goes_back_with_unsupported_response_type(
    browser: Browser, web_rp: RelyingParty, response_type: str
) -> None:
    params = web_rp.auth_request().params
    params["response_type"] = response_type

    answer = assert_redirected_error(browser.authorize(params), web_rp, "unsupported_response_type")

    assert answer["error_description"] == "Only 'response_type=code' is supported."


def test_a_client_without_the_code_grant_goes_back_with_unauthorized_client(
    browser: Browser, provider: Provider
) -> None:
    service = register(provider.registry, "service", grant_types=["client_credentials"])
    rp = RelyingParty(browser.http, service)

    params = assert_redirected_error(browser.authorize(rp.auth_request().params), rp, "unauthorized_client")

    assert params["error_description"] == "The client is not authorized to use 'response_type=code'"


def test_a_scope_the_client_may_not_have_is_left_out_and_the_token_response_says_what_was_granted(
    browser: Browser, web_rp: RelyingParty
) -> None:
    request = web_rp.auth_request(scope="openid admin email no-such-scope")
    code = code_of(browser.sign_in(request.params))

    tokens = web_rp.exchange(request, code).json()

    assert tokens["scope"] == "openid email"
    assert "id_token" in tokens


def test_a_request_granted_no_openid_scope_is_plain_oauth_without_an_id_token(
    browser: Browser, web_rp: RelyingParty
) -> None:
    request = web_rp.auth_request(scope="admin email")
    code = code_of(browser.sign_in(request.params))

    tokens = web_rp.exchange(request, code).json()

    assert tokens["scope"] == "email"
    assert "id_token" not in tokens


def test_a_public_client_without_pkce_goes_back_with_invalid_request(
    browser: Browser, spa_rp: RelyingParty
) -> None:
    request = spa_rp.auth_request(pkce=False)

    params = assert_redirected_error(browser.authorize(request.params), spa_rp, "invalid_request")

    assert params["error_description"] == "Public clients must send a PKCE 'code_challenge' (S256)."


@pytest.mark.parametrize("client_name", ["spa_rp", "web_rp"])
def test_the_plain_code_challenge_method_is_refused(
    browser: Browser, client_name: str, request: pytest.FixtureRequest
) -> None:
    rp: RelyingParty = request.getfixturevalue(client_name)
    auth = rp.auth_request(code_challenge_method="plain")

    params = assert_redirected_error(browser.authorize(auth.params), rp, "invalid_request")

    assert params["error_description"] == "Unsupported 'code_challenge_method': only 'S256' is accepted."


def test_a_code_challenge_without_a_method_is_refused_as_plain(
    browser: Browser, spa_rp: RelyingParty
) -> None:
    auth = spa_rp.auth_request()
    del auth.params["code_challenge_method"]

    params = assert_redirected_error(browser.authorize(auth.params), spa_rp, "invalid_request")

    assert params["error_description"] == "Unsupported 'code_challenge_method': only 'S256' is accepted."


def test_a_malformed_code_challenge_is_refused(browser: Browser, spa_rp: RelyingParty) -> None:
    auth = spa_rp.auth_request(code_challenge="too-short")

    params = assert_redirected_error(browser.authorize(auth.params), spa_rp, "invalid_request")

    assert params["error_description"] == "Invalid 'code_challenge'"


def test_an_error_without_state_comes_back_without_state(browser: Browser, web_rp: RelyingParty) -> None:
    request = web_rp.auth_request(scope="openid", state=None, prompt="none")

    params = redirect_params(browser.authorize(request.params))

    assert params["error"] == "login_required"
    assert "state" not in params
    assert params["iss"] == ISSUER


def test_a_redirect_uri_with_a_query_keeps_it_when_the_answer_is_added(
    browser: Browser, provider: Provider
) -> None:
    uri = "https://app.example.com/callback?tenant=a"
    client = register(provider.registry, "app", redirect_uris=[uri])
    rp = RelyingParty(browser.http, client)

    response = browser.sign_in(rp.auth_request().params)

    assert location(response).startswith(uri + "&code=")
    assert redirect_params(response)["tenant"] == "a"


# prompt, max_age, login_hint -------------------------------------------------------------------------


def test_prompt_none_without_a_session_goes_back_with_login_required(
    browser: Browser, web_rp: RelyingParty
) -> None:
    request = web_rp.auth_request(prompt="none")

    assert_redirected_error(browser.authorize(request.params), web_rp, "login_required")


def test_prompt_none_with_a_session_but_no_consent_goes_back_with_consent_required(
    browser: Browser, web_rp: RelyingParty, provider: Provider
) -> None:
    other = RelyingParty(browser.http, register(provider.registry, "other-app"))
    sign_in(browser, other)

    response = browser.authorize(web_rp.auth_request(prompt="none").params)

    assert_redirected_error(response, web_rp, "consent_required")


def test_prompt_none_with_a_session_and_consent_answers_with_a_code_at_once(
    browser: Browser, web_rp: RelyingParty
) -> None:
    sign_in(browser, web_rp)

    response = browser.authorize(web_rp.auth_request(prompt="none").params)

    assert response.status_code == 302
    assert redirect_params(response)["state"] == "af0ifjsldkj"
    assert code_of(response)


def test_prompt_none_with_another_prompt_goes_back_with_invalid_request(
    browser: Browser, web_rp: RelyingParty
) -> None:
    sign_in(browser, web_rp)

    response = browser.authorize(web_rp.auth_request(prompt="none login").params)

    assert_redirected_error(response, web_rp, "invalid_request")


def test_prompt_login_shows_the_login_page_even_with_a_session(
    browser: Browser, web_rp: RelyingParty
) -> None:
    sign_in(browser, web_rp)

    response = browser.authorize(web_rp.auth_request(prompt="login").params)

    assert response.status_code == 303
    assert redirect_target(response) == f"{ISSUER}/login"
    assert code_of(browser.finish(response))


def test_prompt_login_may_sign_in_another_user(browser: Browser, web_rp: RelyingParty, http: Any) -> None:
    sign_in(browser, web_rp)
    request = web_rp.auth_request(prompt="login")

    code = code_of(browser.finish(browser.authorize(request.params), username="bob"))

    tokens = web_rp.exchange(request, code).json()
    assert (
        http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()[
            "preferred_username"
        ]
        == "bob"
    )


def test_max_age_exceeded_shows_the_login_page(
    browser: Browser, web_rp: RelyingParty, provider: Provider
) -> None:
    sign_in(browser, web_rp)
    session_id = browser.session_cookie
    assert session_id is not None
    # The state is memory or SQLite here: neither is bound to the test client's event loop.
    session = asyncio.run(provider.state.get_session(session_id))
    assert session is not None
    assert session.auth_time is not None
    changed = dataclasses.replace(session, auth_time=session.auth_time - 600)
    asyncio.run(provider.state.save_session(session_id, changed, 3600))

    response = browser.authorize(web_rp.auth_request(max_age="300").params)

    assert response.status_code == 303
    assert redirect_target(response) == f"{ISSUER}/login"
    assert code_of(browser.finish(response))


def test_max_age_not_exceeded_keeps_the_session(browser: Browser, web_rp: RelyingParty) -> None:
    sign_in(browser, web_rp)

    response = browser.authorize(web_rp.auth_request(max_age="300").params)

    assert code_of(response)


def test_max_age_exceeded_with_prompt_none_goes_back_with_login_required(
    browser: Browser, web_rp: RelyingParty, provider: Provider
) -> None:
    sign_in(browser, web_rp)
    session_id = browser.session_cookie
    assert session_id is not None
    # The state is memory or SQLite here: neither is bound to the test client's event loop.
    session = asyncio.run(provider.state.get_session(session_id))
    assert session is not None
    changed = dataclasses.replace(session, auth_time=int(time.time()) - 60)
    asyncio.run(provider.state.save_session(session_id, changed, 3600))

    response = browser.authorize(web_rp.auth_request(max_age="10", prompt="none").params)

    assert_redirected_error(response, web_rp, "login_required")


def test_a_max_age_that_is_not_a_number_goes_back_with_invalid_request(
    browser: Browser, web_rp: RelyingParty
) -> None:
    sign_in(browser, web_rp)

    response = browser.authorize(web_rp.auth_request(max_age="soon").params)

    params = assert_redirected_error(response, web_rp, "invalid_request")
    assert params["error_description"] == "'max_age' must be a non-negative integer number of seconds."


def test_login_hint_prefills_the_username(browser: Browser, web_rp: RelyingParty) -> None:
    response = browser.authorize(web_rp.auth_request(login_hint="bob").params)

    page = browser.get(location(response))

    assert page.status_code == 200
    assert 'value="bob"' in page.text


def test_the_login_page_shows_the_client_it_signs_in_to(browser: Browser, web_rp: RelyingParty) -> None:
    page = browser.get(location(browser.authorize(web_rp.auth_request().params)))

    assert "Web App" in page.text
    assert "The web-app application" in page.text
    assert "https://web-app.example.com" in page.text


# Consent ---------------------------------------------------------------------------------------------


def test_the_consent_page_shows_the_client_and_each_scope_asked_for(
    browser: Browser, web_rp: RelyingParty
) -> None:
    response = browser.authorize(web_rp.auth_request(scope="openid email groups").params)
    login_page = browser.get(location(response))
    resume = browser.get(location(browser.login(login_page)))

    page = browser.get(location(resume))

    assert redirect_target(resume) == f"{ISSUER}/consent"
    assert "Web App" in page.text
    for scope in ("openid", "email", "groups"):
        assert f'data-scope="{scope}"' in page.text
    assert 'data-scope="profile"' not in page.text


def test_the_consent_page_shows_only_the_scopes_that_will_be_granted(
    browser: Browser, web_rp: RelyingParty
) -> None:
    response = browser.authorize(web_rp.auth_request(scope="openid admin email").params)
    login_page = browser.get(location(response))
    resume = browser.get(location(browser.login(login_page)))

    page = browser.get(location(resume))

    assert 'data-scope="email"' in page.text
    assert "admin" not in page.text


def test_consent_is_remembered_for_the_same_scopes(browser: Browser, web_rp: RelyingParty) -> None:
    sign_in(browser, web_rp)

    response = browser.authorize(web_rp.auth_request().params)

    assert response.status_code == 302
    assert code_of(response)


def test_asking_for_more_scopes_shows_the_consent_page_again(browser: Browser, web_rp: RelyingParty) -> None:
    sign_in(browser, web_rp, scope="openid")

    response = browser.authorize(web_rp.auth_request(scope="openid email").params)

    assert redirect_target(response) == f"{ISSUER}/consent"


def test_prompt_consent_shows_the_consent_page_again(browser: Browser, web_rp: RelyingParty) -> None:
    sign_in(browser, web_rp)

    response = browser.authorize(web_rp.auth_request(prompt="consent").params)

    assert response.status_code == 303
    assert redirect_target(response) == f"{ISSUER}/consent"
    assert code_of(browser.finish(response))


def test_denying_consent_goes_back_with_access_denied_and_the_state(
    browser: Browser, web_rp: RelyingParty
) -> None:
    response = browser.sign_in(web_rp.auth_request(state="keep-me").params, decision="deny")

    assert_redirected_error(response, web_rp, "access_denied", state="keep-me")


def test_denying_consent_remembers_nothing(browser: Browser, web_rp: RelyingParty) -> None:
    browser.sign_in(web_rp.auth_request().params, decision="deny")

    response = browser.authorize(web_rp.auth_request().params)

    assert redirect_target(response) == f"{ISSUER}/consent"


# Success ---------------------------------------------------------------------------------------------


def test_a_signed_in_user_goes_back_with_a_code_the_state_and_the_issuer(
    browser: Browser, web_rp: RelyingParty
) -> None:
    response = browser.sign_in(web_rp.auth_request(state="xyz").params)

    assert response.status_code == 302
    assert redirect_target(response) == CALLBACK
    params = redirect_params(response)
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "xyz"
    assert params["iss"] == ISSUER
    assert response.headers["cache-control"] == "no-store"


def test_the_first_authorize_sends_the_browser_to_the_login_page(
    browser: Browser, web_rp: RelyingParty
) -> None:
    response = browser.authorize(web_rp.auth_request().params)

    assert response.status_code == 303
    assert redirect_target(response) == f"{ISSUER}/login"
    assert "interaction" in redirect_params(response)


def test_authorize_accepts_a_posted_form(browser: Browser, web_rp: RelyingParty) -> None:
    request = web_rp.auth_request()

    response = browser.finish(browser.authorize(request.params, method="POST"))

    assert web_rp.exchange(request, code_of(response)).status_code == 200


def test_a_finished_interaction_cannot_be_resumed_again(browser: Browser, web_rp: RelyingParty) -> None:
    response = browser.authorize(web_rp.auth_request().params)
    interaction = redirect_params(response)["interaction"]
    browser.finish(response)

    again = browser.get(f"/authorize/resume?interaction={interaction}")

    assert_error_page(again)
    assert "This sign-in request has expired" in again.text


def test_a_client_removed_during_sign_in_gets_no_code(
    browser: Browser, web: RegisteredClient, web_rp: RelyingParty, provider: Provider
) -> None:
    page = browser.get(location(browser.authorize(web_rp.auth_request().params)))
    provider.registry.delete_oidcclient(web.objects[0])

    response = browser.login(page)

    assert_error_page(response)
