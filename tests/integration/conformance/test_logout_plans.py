"""The RP-Initiated Logout and Back-Channel Logout certification plans
(oidcc-rp-initiated-logout-certification-test-plan, oidcc-backchannel-rp-initiated-logout-certification-
test-plan): a test per module, named after it, and the back channel checked by a receiver of our own.

``conformance.mjs logout`` plays the modules in one Chromium with npm ``openid-client``; the receiver
(``support.backchannel_receiver``) is every client's back-channel logout endpoint and checks each logout
token as a relying party must (signature by the JWKS, ``iss``, ``aud``, ``iat``, ``jti``, ``events``,
``sid``, no ``nonce``, ``typ: logout+jwt``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from kubeoidc_provider.context import Provider
from kubeoidc_provider.keys import KeySet, generate_jwks
from support.backchannel_receiver import FLAKY_FAILURES, Receiver, backchannel_receiver, verify_logout_token
from support.conformance import CLIENT_ORIGIN, plan_config, register_client

pytestmark = [pytest.mark.node, pytest.mark.browser]

POST_LOGOUT = f"{CLIENT_ORIGIN}/basic/logged-out"
POST_LOGOUT_WITH_QUERY = f"{POST_LOGOUT}?keep=1"
FRONT_POST_LOGOUT = f"{CLIENT_ORIGIN}/front-a/logged-out"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with backchannel_receiver() as started:
        yield started


@pytest.fixture(scope="module")
def clients(provider: Provider, receiver: Receiver) -> dict[str, dict[str, Any]]:
    return {
        "basic": register_client(
            provider,
            "basic",
            postLogoutRedirectURIs=[POST_LOGOUT, POST_LOGOUT_WITH_QUERY],
            backchannelLogoutURI=f"{receiver.url}/basic",
        ),
        "second": register_client(
            provider,
            "second",
            backchannelLogoutURI=f"{receiver.url}/second",
            backchannelLogoutSessionRequired=True,
        ),
        "hanging": register_client(provider, "hanging", backchannelLogoutURI=f"{receiver.url}/hang"),
        "frontA": register_client(
            provider,
            "front-a",
            postLogoutRedirectURIs=[FRONT_POST_LOGOUT],
            frontchannelLogoutURI=f"{CLIENT_ORIGIN}/front-a/frontchannel",
            frontchannelLogoutSessionRequired=True,
        ),
        "frontB": register_client(
            provider, "front-b", frontchannelLogoutURI=f"{CLIENT_ORIGIN}/front-b/frontchannel?from=op"
        ),
        "revoker": register_client(
            provider,
            "revoker",
            grantTypes=["authorization_code", "refresh_token"],
            backchannelLogoutURI=f"{receiver.url}/flaky",
        ),
    }


@pytest.fixture(scope="module")
def plan(provider: Provider, clients: dict[str, dict[str, Any]], run_plan: Any) -> dict[str, Any]:
    # A delivery may wait a minute for an answer: were the logout to wait for deliveries, the hanging
    # client would hold the browser far beyond the relying party's 10 s step bound. Retries come fast.
    provider.backchannel.timeout = 60.0
    provider.backchannel.pause = 0.05
    foreign = KeySet.from_jwks(generate_jwks("ES256")).sign(
        {"iss": provider.settings.issuer, "sub": "7b0c2f6e-alice", "aud": clients["basic"]["clientId"]}
    )
    config = plan_config(
        provider,
        clients,
        postLogoutRedirectUri=POST_LOGOUT,
        postLogoutRedirectUriWithQuery=POST_LOGOUT_WITH_QUERY,
        frontPostLogoutRedirectUri=FRONT_POST_LOGOUT,
        foreignIdToken=foreign,
        otherUsername="bob",
    )
    result: dict[str, Any] = run_plan("logout", config)
    return result


def logout_tokens(
    provider: Provider, receiver: Receiver, path: str, audience: str, *, sid: str | None = None
) -> list[dict[str, Any]]:
    """The verified logout tokens POSTed to ``path`` (for the session ``sid``, when given)."""
    jwks = json.loads(provider.keys.public_jwks_bytes)
    tokens = []
    for post in receiver.posts_to(path):
        assert post.content_type.startswith("application/x-www-form-urlencoded")
        claims = verify_logout_token(
            post.form["logout_token"][0], jwks, issuer=provider.settings.issuer, audience=audience
        )
        if sid is None or claims.get("sid") == sid:
            tokens.append(claims)
    return tokens


def until(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold before the deadline")
        time.sleep(0.05)


def shown_page(module: dict[str, Any]) -> dict[str, Any]:
    """The provider page a logout request stopped on (it was not redirected anywhere)."""
    assert "landed" not in module, module
    page: dict[str, Any] = module["page"]
    return page


def test_oidcc_rp_initiated_logout(plan: dict[str, Any]) -> None:
    module = plan["oidcc-rp-initiated-logout"]
    assert module["landed"] == POST_LOGOUT
    assert module["stateEchoed"] is True
    assert module["sessionAliveAfter"] is False


def test_oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(plan: dict[str, Any]) -> None:
    # RP-Initiated Logout §3, OP-RpInitLogout-Unregistered-post_logout_redirect_uri: never redirected
    # to an unregistered URI; an error page says why, and nobody is signed out.
    module = plan["oidcc-rp-initiated-logout-bad-post-logout-redirect-uri"]
    page = shown_page(module)
    assert page["title"] == "Sign-out request refused"
    assert "is not registered for this client" in page["text"]
    assert module["sessionAliveAfter"] is True


def test_op_frontchannel_rpinitlogout(
    provider: Provider, clients: dict[str, dict[str, Any]], plan: dict[str, Any]
) -> None:
    """Front-Channel Logout 1.0: Chromium loads the signed-out page, which frames each client's
    front-channel logout URI (``iss`` and ``sid`` for the client that requires them), then goes on to the
    post-logout redirect URI with ``state``; no CSP violation or script error on the way."""
    module = plan["op-frontchannel-rpinitlogout"]
    sid = module["sids"][0]
    assert module["sids"] == [sid, sid]
    frames = {urlsplit(url).path: dict(parse_qsl(urlsplit(url).query)) for url in module["frames"]}
    assert frames == {
        "/front-a/frontchannel": {"iss": provider.settings.issuer, "sid": sid},
        "/front-b/frontchannel": {"from": "op"},
    }
    assert module["landed"] == FRONT_POST_LOGOUT
    assert module["query"] == {"state": module["expectedState"]}
    assert module["problems"] == []
    assert module["sessionAliveAfter"] is False


def test_oidcc_rp_initiated_logout_modified_id_token_hint(plan: dict[str, Any]) -> None:
    module = plan["oidcc-rp-initiated-logout-modified-id-token-hint"]
    assert "id_token_hint" in shown_page(module)["text"]
    assert module["sessionAliveAfter"] is True


def test_oidcc_rp_initiated_logout_bad_id_token_hint(plan: dict[str, Any]) -> None:
    module = plan["oidcc-rp-initiated-logout-bad-id-token-hint"]
    assert "id_token_hint" in shown_page(module)["text"]
    assert module["sessionAliveAfter"] is True


def test_oidcc_rp_initiated_logout_no_id_token_hint(plan: dict[str, Any]) -> None:
    # Without a hint nobody can tell the request came from the user's application: the user confirms,
    # and nothing is redirected.
    module = plan["oidcc-rp-initiated-logout-no-id-token-hint"]
    shown_page(module)
    assert module["sessionAliveAfter"] is True


def test_oidcc_rp_initiated_logout_only_state(plan: dict[str, Any]) -> None:
    module = plan["oidcc-rp-initiated-logout-only-state"]
    assert shown_page(module)["title"] == "Sign out"
    assert module["sessionAliveAfter"] is True


def test_oidcc_rp_initiated_logout_no_params(plan: dict[str, Any]) -> None:
    module = plan["oidcc-rp-initiated-logout-no-params"]
    assert shown_page(module)["title"] == "Sign out"
    assert module["afterConfirm"] == "Signed out"
    assert module["sessionAliveAfter"] is False


def test_oidcc_rp_initiated_logout_no_post_logout_redirect_uri(plan: dict[str, Any]) -> None:
    module = plan["oidcc-rp-initiated-logout-no-post-logout-redirect-uri"]
    assert shown_page(module)["title"] == "Signed out"
    assert module["sessionAliveAfter"] is False


def test_oidcc_rp_initiated_logout_no_state(plan: dict[str, Any]) -> None:
    module = plan["oidcc-rp-initiated-logout-no-state"]
    assert module["landed"] == POST_LOGOUT
    assert module["query"] == {}
    assert module["sessionAliveAfter"] is False


def test_oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri(plan: dict[str, Any]) -> None:
    module = plan["oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri"]
    assert module["landed"] == POST_LOGOUT
    assert module["query"] == {"keep": "1", "state": module["expectedState"]}
    assert module["sessionAliveAfter"] is False


def test_oidcc_backchannel_rp_initiated_logout(
    provider: Provider, receiver: Receiver, clients: dict[str, dict[str, Any]], plan: dict[str, Any]
) -> None:
    """Every client the session signed in to gets one logout token for it, with the session's sid."""
    module = plan["oidcc-rp-initiated-logout"]
    sid = module["sids"][0]
    assert module["sids"] == [sid, sid, sid]  # one session, three clients
    for name in ("basic", "second"):
        path, audience = f"/{name}", clients[name]["clientId"]
        until(
            lambda path=path, audience=audience: bool(
                logout_tokens(provider, receiver, path, audience, sid=sid)
            )
        )
        (token,) = logout_tokens(provider, receiver, path, audience, sid=sid)
        assert token["sub"] == module["sub"]
        assert token["sid"] == sid


def test_a_back_channel_that_hangs_does_not_stall_the_logout(
    receiver: Receiver, plan: dict[str, Any]
) -> None:
    # The hanging client's endpoint is holding its POST unanswered until this module ends, and the
    # browser's logout has already landed on the post-logout redirect URI (within the relying party's
    # 10 s step bound, while the provider would wait 60 s for an answer).
    until(lambda: bool(receiver.posts_to("/hang")))
    assert not receiver.release.is_set()
    assert plan["oidcc-rp-initiated-logout"]["landed"] == POST_LOGOUT


def test_a_revoked_grant_sends_a_logout_token_and_retries_a_failing_back_channel(
    provider: Provider, receiver: Receiver, clients: dict[str, dict[str, Any]], plan: dict[str, Any]
) -> None:
    revoked = plan["revoked-grant"]
    audience = clients["revoker"]["clientId"]
    until(lambda: len(receiver.posts_to("/flaky")) == FLAKY_FAILURES + 1)
    tokens = logout_tokens(provider, receiver, "/flaky", audience)
    assert {token["jti"] for token in tokens} == {tokens[0]["jti"]}  # the same token, retried
    assert tokens[0]["sub"] == revoked["sub"]
    assert tokens[0]["sid"] == revoked["sid"]
    time.sleep(0.3)  # a few pauses' worth: a delivered token is not sent again
    assert len(receiver.posts_to("/flaky")) == FLAKY_FAILURES + 1


def test_another_user_signing_in_ends_the_first_users_session_everywhere(
    provider: Provider, receiver: Receiver, clients: dict[str, dict[str, Any]], plan: dict[str, Any]
) -> None:
    module = plan["another-user-signs-in"]
    assert module["after"]["sub"] != module["before"]["sub"]
    assert module["after"]["sid"] != module["before"]["sid"]
    sid, audience = module["before"]["sid"], clients["basic"]["clientId"]
    until(lambda: bool(logout_tokens(provider, receiver, "/basic", audience, sid=sid)))
    (token,) = logout_tokens(provider, receiver, "/basic", audience, sid=sid)
    assert token["sub"] == module["before"]["sub"]
