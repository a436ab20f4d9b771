"""Front-Channel Logout 1.0: the signed-out page frames the logout page of every client the session
signed in to, with ``iss`` and ``sid`` where the client needs them, under a CSP that allows exactly those
frames; the provider's own pages are still never framed. (In Chromium: ``test_logout_plans.py``.)"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from kubeoidc_provider.context import Provider
from support.provider import ISSUER, register
from support.provider_flow import Browser, RelyingParty, redirect_target, sign_in_for_tokens

APP_LOGOUT = "https://app.example.com/signed-out"


def frames(html: str) -> list[str]:
    return [
        src.replace("&amp;", "&") for src in re.findall(r'<iframe class="logout-frame" src="([^"]*)"', html)
    ]


def test_the_signed_out_page_frames_each_clients_front_channel_page_then_goes_back_to_the_client(
    provider: Provider, browser: Browser
) -> None:
    with_sid = register(
        provider.registry,
        "app",
        redirect_uris=["https://app.example.com/callback"],
        post_logout_redirect_uris=[APP_LOGOUT],
    )
    with_sid.objects[0]["spec"].update(
        frontchannelLogoutURI="https://app.example.com/logout?from=op", frontchannelLogoutSessionRequired=True
    )
    provider.registry.upsert_oidcclient(with_sid.objects[0])
    plain = register(provider.registry, "wiki", redirect_uris=["http://127.0.0.1:8081/callback"])
    plain.objects[0]["spec"]["frontchannelLogoutURI"] = "http://127.0.0.1:8081/fc"
    provider.registry.upsert_oidcclient(plain.objects[0])
    silent = register(provider.registry, "no-front-channel")
    app = RelyingParty(browser.http, with_sid)
    id_token = sign_in_for_tokens(browser, app)["id_token"]
    sign_in_for_tokens(browser, RelyingParty(browser.http, plain))
    sign_in_for_tokens(browser, RelyingParty(browser.http, silent))
    sid = provider.keys.verify(id_token)["sid"]

    response = browser.http.get(
        "/logout", params={"id_token_hint": id_token, "post_logout_redirect_uri": APP_LOGOUT, "state": "s"}
    )

    assert response.status_code == 200
    assert frames(response.text) == [
        f"https://app.example.com/logout?from=op&{urlencode({'iss': ISSUER, 'sid': sid})}",
        "http://127.0.0.1:8081/fc",
    ]
    assert f'href="{APP_LOGOUT}?state=s"' in response.text
    policy = response.headers["content-security-policy"]
    assert "frame-src http://127.0.0.1:8081 https://app.example.com;" in policy
    assert "frame-ancestors 'none'" in policy
    assert re.search(r"script-src 'nonce-[\w-]{20,}'", policy)
    assert response.headers["x-frame-options"] == "DENY"
    assert redirect_target(browser.authorize(app.auth_request().params)) == f"{ISSUER}/login"


def test_a_logout_without_front_channel_clients_redirects_at_once(
    provider: Provider, browser: Browser, web_rp: RelyingParty
) -> None:
    id_token = sign_in_for_tokens(browser, web_rp)["id_token"]
    logout_uri = web_rp.client.objects[0]["spec"]["postLogoutRedirectURIs"][0]

    response = browser.get(f"/logout?id_token_hint={id_token}&post_logout_redirect_uri={logout_uri}")

    assert response.status_code == 303
    assert "frame-src" not in response.headers.get("content-security-policy", "")


def test_the_frames_are_shown_once_a_second_logout_of_the_session_finds_none(
    provider: Provider, browser: Browser
) -> None:
    client = register(provider.registry, "app", redirect_uris=["https://app.example.com/callback"])
    client.objects[0]["spec"]["frontchannelLogoutURI"] = "https://app.example.com/fc"
    provider.registry.upsert_oidcclient(client.objects[0])
    id_token = sign_in_for_tokens(browser, RelyingParty(browser.http, client))["id_token"]

    first = browser.http.get("/logout", params={"id_token_hint": id_token})
    again = browser.http.get("/logout", params={"id_token_hint": id_token})

    assert frames(first.text) == ["https://app.example.com/fc"]
    assert frames(again.text) == []
    assert "You are signed out" in again.text
