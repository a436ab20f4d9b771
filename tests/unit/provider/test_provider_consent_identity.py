"""Consent belongs to the OIDCClient that was consented to, not to its client ID: a pinned ID freed
and pinned again by another OIDCClient (another tenant) inherits no user's consent."""

from __future__ import annotations

from kubeoidc_provider.context import Provider
from support.provider import register
from support.provider_flow import Browser, RelyingParty, redirect_params, sign_in_for_code


def test_a_client_id_pinned_again_by_another_oidcclient_inherits_no_consent(
    browser: Browser, provider: Provider
) -> None:
    uris = ["https://app.example.com/callback"]
    first = register(provider.registry, "app", client_id="legacy-42", redirect_uris=uris, namespace="team-a")
    sign_in_for_code(browser, RelyingParty(browser.http, first))  # alice consents to team-a's app
    provider.registry.delete_oidcclient(first.objects[0])

    second = register(provider.registry, "app", client_id="legacy-42", redirect_uris=uris, namespace="team-b")
    response = browser.authorize(RelyingParty(browser.http, second).auth_request(prompt="none").params)

    assert redirect_params(response)["error"] == "consent_required"


def test_the_same_oidcclient_keeps_its_consent(browser: Browser, provider: Provider) -> None:
    client = register(provider.registry, "app", redirect_uris=["https://app.example.com/callback"])
    rp = RelyingParty(browser.http, client)
    sign_in_for_code(browser, rp)

    response = browser.authorize(rp.auth_request(prompt="none").params)

    assert "code" in redirect_params(response)
