"""RFC 8252 §7.3: a loopback IP redirect URI matches on any port; everything else stays exact."""

from __future__ import annotations

import pytest

from kubeoidc_provider.context import Provider
from support.provider import register
from support.provider_flow import Browser, RelyingParty, sign_in_for_code


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/callback"),
        ("http://127.0.0.1:8400/callback", "http://127.0.0.1:61000/callback"),
        ("http://[::1]/callback", "http://[::1]:51234/callback"),
        ("http://127.0.0.1:8400/callback?x=1", "http://127.0.0.1/callback?x=1"),
    ],
)
def test_a_loopback_ip_redirect_uri_is_accepted_on_any_port(
    browser: Browser, provider: Provider, registered: str, requested: str
) -> None:
    client = register(provider.registry, "cli", public=True, redirect_uris=[registered])
    native = RelyingParty(browser.http, client)

    request, code = sign_in_for_code(browser, native, redirect_uri=requested)

    assert code
    assert native.exchange(request, code).status_code == 200


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/other"),
        ("http://127.0.0.1/callback", "http://localhost:51234/callback"),
        ("http://localhost:8400/callback", "http://localhost:8401/callback"),
        ("http://127.0.0.1/callback", "https://127.0.0.1:51234/callback"),
        ("http://127.0.0.1/callback", "http://127.0.0.1:51234/callback?x=1"),
        ("https://app.example.com:8443/cb", "https://app.example.com:9443/cb"),
        ("http://127.0.0.1/callback", "http://user@127.0.0.1:51234/callback"),
    ],
)
def test_any_other_difference_is_refused_on_an_error_page(
    browser: Browser, provider: Provider, registered: str, requested: str
) -> None:
    client = register(provider.registry, "cli", public=True, redirect_uris=[registered])

    response = browser.authorize(
        RelyingParty(browser.http, client).auth_request(redirect_uri=requested).params
    )

    assert response.status_code == 400
    assert "location" not in response.headers
