"""RFC 8252 §8.6: a public client redirecting to a loopback address or a private-use scheme cannot
prove who it is, so a remembered consent never sends it a code without asking the user again."""

from __future__ import annotations

import pytest

from kubeoidc_provider.context import Provider
from support.provider import register
from support.provider_flow import Browser, RelyingParty, code_of, redirect_params, sign_in_for_code


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1:8400/callback", "http://[::1]:8400/callback", "com.example.cli:/callback"],
)
def test_prompt_none_for_a_native_public_client_is_consent_required_even_after_consent(
    browser: Browser, provider: Provider, redirect_uri: str
) -> None:
    native = RelyingParty(
        browser.http, register(provider.registry, "cli", public=True, redirect_uris=[redirect_uri])
    )
    sign_in_for_code(browser, native)  # signed in, and consented once

    response = browser.authorize(native.auth_request(prompt="none").params)

    assert response.status_code == 302
    assert response.headers["location"].startswith(redirect_uri)
    params = redirect_params(response)
    assert params["error"] == "consent_required"
    assert "code" not in params


def test_a_native_public_client_is_shown_the_consent_page_again(browser: Browser, provider: Provider) -> None:
    native = RelyingParty(
        browser.http, register(provider.registry, "cli", public=True, redirect_uris=["com.example.cli:/cb"])
    )
    sign_in_for_code(browser, native)

    response = browser.authorize(native.auth_request().params)

    assert response.status_code in (302, 303)
    assert "/consent" in response.headers["location"]


def test_a_confidential_client_keeps_its_remembered_consent(browser: Browser, web_rp: RelyingParty) -> None:
    sign_in_for_code(browser, web_rp)

    response = browser.authorize(web_rp.auth_request(prompt="none").params)

    assert code_of(response)
