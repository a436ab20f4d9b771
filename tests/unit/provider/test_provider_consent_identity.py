"""Consents, codes, access and refresh tokens and device codes belong to the OIDCClient they were given
to, not to its client ID: a pinned ID freed and pinned again by another OIDCClient (another tenant)
inherits none."""

from __future__ import annotations

from kubeoidc_provider.backchannel import BackchannelLogout
from kubeoidc_provider.context import Provider
from kubeoidc_provider.keys import KeySet
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.signing import SigningKeys
from kubeoidc_provider.state import State
from kubeoidc_provider.storage.memory import MemoryStorage
from support.backchannel_receiver import backchannel_receiver
from support.provider import ISSUER, RegisteredClient, register, signing_jwks
from support.provider_flow import (
    Browser,
    RelyingParty,
    bearer,
    redirect_params,
    sign_in_for_code,
    sign_in_for_tokens,
)

URIS = ["https://app.example.com/callback"]


def pinned_again(provider: Provider, first: RegisteredClient) -> RegisteredClient:
    """Delete team-a's OIDCClient, and pin its client ID in team-b (with team-b's own secret)."""
    provider.registry.delete_oidcclient(first.objects[0])
    return register(
        provider.registry, "app", client_id=first.client_id, redirect_uris=URIS, namespace="team-b"
    )


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


def test_a_client_id_pinned_again_by_another_oidcclient_cannot_use_the_old_refresh_token(
    browser: Browser, provider: Provider
) -> None:
    first = register(provider.registry, "app", client_id="legacy-42", redirect_uris=URIS, namespace="team-a")
    tokens = sign_in_for_tokens(browser, RelyingParty(browser.http, first))
    second = RelyingParty(browser.http, pinned_again(provider, first))

    refused = second.refresh(tokens["refresh_token"])

    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    assert second.introspect(tokens["refresh_token"]).json() == {"active": False}


def test_a_client_id_pinned_again_by_another_oidcclient_cannot_redeem_the_old_code(
    browser: Browser, provider: Provider
) -> None:
    first = register(provider.registry, "app", client_id="legacy-42", redirect_uris=URIS, namespace="team-a")
    request, code = sign_in_for_code(browser, RelyingParty(browser.http, first))
    second = RelyingParty(browser.http, pinned_again(provider, first))

    refused = second.exchange(request, code)

    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"


def test_a_client_id_pinned_again_by_another_oidcclient_gets_nothing_from_the_old_access_token(
    browser: Browser, provider: Provider
) -> None:
    first = register(provider.registry, "app", client_id="legacy-42", redirect_uris=URIS, namespace="team-a")
    access_token = sign_in_for_tokens(browser, RelyingParty(browser.http, first))["access_token"]
    second = RelyingParty(browser.http, pinned_again(provider, first))

    userinfo = browser.http.get("/userinfo", headers=bearer(access_token))

    assert userinfo.status_code == 401
    assert 'error="invalid_token"' in userinfo.headers["WWW-Authenticate"]
    assert second.introspect(access_token).json() == {"active": False}


def test_the_same_oidcclient_keeps_its_access_token(browser: Browser, provider: Provider) -> None:
    client = register(provider.registry, "app", client_id="legacy-42", redirect_uris=URIS, namespace="team-a")
    rp = RelyingParty(browser.http, client)
    access_token = sign_in_for_tokens(browser, rp)["access_token"]

    assert browser.http.get("/userinfo", headers=bearer(access_token)).status_code == 200
    assert rp.introspect(access_token).json()["active"] is True


def test_the_same_oidcclient_keeps_its_refresh_token(browser: Browser, provider: Provider) -> None:
    client = register(provider.registry, "app", client_id="legacy-42", redirect_uris=URIS, namespace="team-a")
    rp = RelyingParty(browser.http, client)
    tokens = sign_in_for_tokens(browser, rp)

    assert rp.refresh(tokens["refresh_token"]).status_code == 200


def with_logout_uri(registry: ClientRegistry, client: RegisteredClient, uri: str) -> None:
    oidcclient = dict(client.objects[0])
    oidcclient["spec"] = {**oidcclient["spec"], "backchannelLogoutURI": uri}
    registry.upsert_oidcclient(oidcclient)


async def test_a_client_id_pinned_again_by_another_oidcclient_gets_no_logout_token_for_old_sessions() -> None:
    with backchannel_receiver() as receiver:
        registry = ClientRegistry()
        registry.mark_ready()
        first = register(registry, "app", client_id="legacy-42", redirect_uris=URIS, namespace="team-a")
        with_logout_uri(registry, first, f"{receiver.url}/team-a")
        state = State(MemoryStorage())
        logout = BackchannelLogout(
            issuer=ISSUER,
            signing=SigningKeys(ISSUER, KeySet.from_jwks(signing_jwks())),
            registry=registry,
            state=state,
        )
        uid = first.objects[0]["metadata"]["uid"]
        await state.add_session_client("before", "alice", "legacy-42", 600, client_uid=uid)
        await state.add_session_client("kept", "bob", "legacy-42", 600, client_uid=uid)
        await logout.session_ended("kept")  # the same OIDCClient: delivered
        registry.delete_oidcclient(first.objects[0])
        second = register(registry, "app", client_id="legacy-42", redirect_uris=URIS, namespace="team-b")
        with_logout_uri(registry, second, f"{receiver.url}/team-b")

        await logout.session_ended("before")
        await logout.close()  # waits for the deliveries under way

        assert len(receiver.posts_to("/team-a")) == 1
        assert receiver.posts_to("/team-b") == []
