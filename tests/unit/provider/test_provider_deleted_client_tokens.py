"""What a client was given ends with it: its access tokens stop working at userinfo once its
OIDCClient is deleted, and nobody can introspect them any more."""

from __future__ import annotations

from starlette.testclient import TestClient

from kubeoidc_provider.context import Provider
from support.provider import RegisteredClient
from support.provider_flow import Browser, RelyingParty, bearer, sign_in_for_tokens


def test_an_access_token_is_refused_at_userinfo_once_its_client_is_deleted(
    browser: Browser, http: TestClient, provider: Provider, web: RegisteredClient, web_rp: RelyingParty
) -> None:
    token = sign_in_for_tokens(browser, web_rp)["access_token"]
    assert http.get("/userinfo", headers=bearer(token)).status_code == 200

    provider.registry.delete_oidcclient(web.objects[0])
    response = http.get("/userinfo", headers=bearer(token))

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_deleted_clients_token_cannot_be_introspected(
    browser: Browser, provider: Provider, web: RegisteredClient, web_rp: RelyingParty
) -> None:
    token = sign_in_for_tokens(browser, web_rp)["access_token"]

    provider.registry.delete_oidcclient(web.objects[0])

    # Only the token's own client may introspect it, and that client no longer authenticates.
    assert web_rp.introspect(token).status_code == 401
