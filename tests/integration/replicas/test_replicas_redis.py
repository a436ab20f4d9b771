"""Two provider replicas sharing one Redis behave as one provider: whatever one issues or learns, the other
honours, and whatever one revokes, the other refuses."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from kubeoidc_provider.assertions import JWT_BEARER
from support.client_keys import KeyClient
from support.provider import PASSWORD
from support.replicas_flow import (
    Browser,
    RelyingParty,
    Replica,
    answer,
    bearer_error,
    code_of,
    location,
    oauth_error,
    tokens_of,
)

pytestmark = pytest.mark.redis


def test_code_minted_on_one_replica_is_redeemed_once_on_the_other(
    replicas: tuple[Replica, Replica], browser: Browser, rp: RelyingParty
) -> None:
    a, b = replicas
    request = rp.auth_request()
    code = code_of(browser.sign_in(request, a), rp.client)

    tokens = tokens_of(rp.exchange(b, request, code))
    assert rp.userinfo(b, tokens["access_token"]).json()["sub"] == "7b0c2f6e-alice"
    assert rp.userinfo(a, tokens["access_token"]).status_code == 200

    # The replay, on the replica that minted the code, is refused and revokes what the first use issued.
    assert oauth_error(rp.exchange(a, request, code)) == "invalid_grant"
    assert bearer_error(rp.userinfo(b, tokens["access_token"])) == "invalid_token"
    assert bearer_error(rp.userinfo(a, tokens["access_token"])) == "invalid_token"
    assert oauth_error(rp.refresh(b, tokens["refresh_token"])) == "invalid_grant"


def test_refresh_token_spent_on_one_replica_is_refused_on_the_other_and_revokes_the_grant(
    replicas: tuple[Replica, Replica], browser: Browser, rp: RelyingParty
) -> None:
    a, b = replicas
    request = rp.auth_request()
    first = tokens_of(rp.exchange(a, request, code_of(browser.sign_in(request, a), rp.client)))
    rotated = tokens_of(rp.refresh(a, first["refresh_token"]))
    assert rotated["refresh_token"] != first["refresh_token"]

    assert oauth_error(rp.refresh(b, first["refresh_token"])) == "invalid_grant"

    # That reuse revoked the whole grant: the successor is refused at its first use, on A which issued
    # it (and never saw the reuse), then on B; so is the access token issued with it.
    assert oauth_error(rp.refresh(a, rotated["refresh_token"])) == "invalid_grant"
    assert oauth_error(rp.refresh(b, rotated["refresh_token"])) == "invalid_grant"
    assert bearer_error(rp.userinfo(a, rotated["access_token"])) == "invalid_token"
    assert bearer_error(rp.userinfo(b, rotated["access_token"])) == "invalid_token"


def test_sign_in_hopping_between_replicas_at_every_step_completes(
    replicas: tuple[Replica, Replica], browser: Browser, rp: RelyingParty
) -> None:
    a, b = replicas
    request = rp.auth_request()
    # authorize on A, login page on B, login on A, resume on B, consent page on A, consent on B, resume on A.
    response = browser.sign_in(request, a, b)
    tokens = tokens_of(rp.exchange(b, request, code_of(response, rp.client)))
    assert rp.userinfo(a, tokens["access_token"]).json()["preferred_username"] == "alice"


def test_session_made_on_one_replica_is_seen_by_the_other(
    replicas: tuple[Replica, Replica], browser: Browser, rp: RelyingParty, issuer: str
) -> None:
    a, b = replicas
    code_of(browser.sign_in(rp.auth_request(), a), rp.client)

    request = rp.auth_request(prompt="none")
    response = browser.authorize(b, request.params)
    code = code_of(response, rp.client)
    assert answer(response, rp.client)["state"] == request.params["state"]
    tokens = tokens_of(rp.exchange(b, request, code))
    assert rp.userinfo(a, tokens["access_token"]).json()["email"] == "alice@example.com"

    # Without the session cookie, the same request is a login_required: the code came from the session.
    stranger = Browser(issuer)
    try:
        refused = answer(stranger.authorize(b, rp.auth_request(prompt="none").params), rp.client)
    finally:
        stranger.close()
    assert refused["error"] == "login_required"


def test_failed_logins_are_counted_across_replicas(
    replicas: tuple[Replica, Replica], browser: Browser, rp: RelyingParty
) -> None:
    a, b = replicas
    started = browser.authorize(a, rp.auth_request().params)
    page = browser.get(a, location(started))
    assert page.status_code == 200

    # LOGIN_ATTEMPTS (3) failures, split over the two replicas, all on the same pending sign-in.
    for replica in (a, b, a):
        failed = browser.login(replica, page, password="wrong " + PASSWORD)
        assert failed.status_code == 401, failed.text

    # The limit is reached for both replicas, even with the right password.
    for replica in (b, a):
        throttled = browser.login(replica, page, password=PASSWORD)
        assert throttled.status_code == 429, throttled.text
        assert "Too many failed sign-in attempts" in throttled.text


async def test_racing_resumes_over_both_replicas_mint_exactly_one_code(
    replicas: tuple[Replica, Replica], browser: Browser, rp: RelyingParty
) -> None:
    a, b = replicas
    page = browser.get(a, location(browser.authorize(a, rp.auth_request().params)))
    to_consent = browser.get(b, location(browser.login(b, page)))
    finished = browser.consent(a, browser.get(a, location(to_consent)))
    resume = location(finished)
    cookies = {name: value for name, value in browser.http.cookies.items() if value is not None}

    # Both replicas at once, each asked several times: a double click behind a load balancer.
    async with httpx2.AsyncClient(cookies=cookies, timeout=10) as racer:
        answers = await asyncio.gather(*(racer.get(browser.url(replica, resume)) for replica in (a, b) * 4))

    codes = [
        response
        for response in answers
        if response.status_code in (302, 303) and "code=" in location(response)
    ]
    assert len(codes) == 1, [response.status_code for response in answers]
    assert all(response.status_code in (302, 303, 400) for response in answers)


def test_a_private_key_jwt_assertion_used_at_one_replica_is_refused_at_the_other(
    replicas: tuple[Replica, Replica], issuer: str, key_client: KeyClient
) -> None:
    a, b = replicas
    assertion = key_client.key.assertion(key_client.client_id, issuer)
    form = {
        "grant_type": "client_credentials",
        "client_id": key_client.client_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }

    used = httpx2.post(f"{a.base_url}/token", data=form, timeout=10)
    replayed = httpx2.post(f"{b.base_url}/token", data=form, timeout=10)

    assert used.status_code == 200, used.text
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["error"] == "invalid_client"
