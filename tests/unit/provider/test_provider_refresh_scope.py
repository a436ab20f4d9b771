"""RFC 6749 §6: a refresh that narrows the scope narrows that access token, not the grant."""

from __future__ import annotations

import copy

from kubeoidc_provider.context import Provider
from support.provider import RegisteredClient
from support.provider_flow import Browser, RelyingParty, sign_in_for_tokens


def test_a_narrowed_refresh_leaves_the_original_scope_available_to_the_next_one(
    browser: Browser, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)
    narrowed = web_rp.refresh(tokens["refresh_token"], scope="openid email").json()
    assert narrowed["scope"] == "openid email"

    response = web_rp.refresh(narrowed["refresh_token"], scope="openid profile email")

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "openid profile email"


def test_a_refresh_without_a_scope_gets_the_original_scope(browser: Browser, web_rp: RelyingParty) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)
    narrowed = web_rp.refresh(tokens["refresh_token"], scope="openid").json()

    response = web_rp.refresh(narrowed["refresh_token"])

    assert response.json()["scope"] == "openid profile email"


def test_a_refresh_leaves_out_a_scope_the_client_may_no_longer_have_and_says_so(
    provider: Provider, browser: Browser, web: RegisteredClient, web_rp: RelyingParty
) -> None:
    tokens = sign_in_for_tokens(browser, web_rp)
    oidcclient, _ = web.objects
    narrowed = copy.deepcopy(oidcclient)
    narrowed["spec"]["scopes"] = ["openid", "email"]
    provider.registry.upsert_oidcclient(narrowed)

    response = web_rp.refresh(tokens["refresh_token"])

    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "openid email"
    assert "name" not in provider.keys.verify(response.json()["id_token"])
