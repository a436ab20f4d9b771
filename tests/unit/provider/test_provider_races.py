"""Racing requests against a served provider on SQLite: the steps that check, then act, are atomic.

Two resumes of one finished sign-in (a double click, a retried request) mint one code between them;
failed logins sent all at once are all counted, and only as many are checked as the limit allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from kubeoidc_provider.context import Provider
from support.live import live_provider
from support.provider import PASSWORD, RegisteredClient, register
from support.provider_flow import Browser, RelyingParty, hidden, location, redirect_params

RACERS = 8
LIMIT = 3


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Provider, RegisteredClient]]:
    with live_provider(
        storage_url=f"sqlite:///{tmp_path}/state.db", login_attempts=LIMIT, login_window=60
    ) as provider:
        yield provider, register(provider.registry, "web-app")


def cookies_of(browser: Browser) -> dict[str, str]:
    return {name: value for name, value in browser.http.cookies.items() if value is not None}


async def test_racing_resumes_of_one_sign_in_mint_exactly_one_code(
    served: tuple[Provider, RegisteredClient],
) -> None:
    provider, client = served
    issuer = provider.settings.issuer
    with httpx.Client(base_url=issuer, timeout=10) as http:
        browser, rp = Browser(http, issuer), RelyingParty(http, client)
        page = browser.get(location(browser.authorize(rp.auth_request().params)))
        to_consent = browser.get(location(browser.login(page)))
        resume_url = location(browser.consent(browser.get(location(to_consent))))
        cookies = cookies_of(browser)

    async with httpx.AsyncClient(base_url=issuer, cookies=cookies, timeout=10) as racer:
        answers = await asyncio.gather(*(racer.get(resume_url) for _ in range(RACERS)))

    codes = [
        redirect_params(answer)["code"]
        for answer in answers
        if answer.status_code in (302, 303) and location(answer).startswith(client.redirect_uri)
    ]
    assert len(codes) == 1
    assert all(answer.status_code in (302, 400) for answer in answers)


async def test_racing_failed_logins_are_all_counted_and_only_the_limit_is_checked(
    served: tuple[Provider, RegisteredClient],
) -> None:
    provider, client = served
    issuer = provider.settings.issuer
    with httpx.Client(base_url=issuer, timeout=10) as http:
        browser, rp = Browser(http, issuer), RelyingParty(http, client)
        page = browser.get(location(browser.authorize(rp.auth_request().params)))
        cookies = cookies_of(browser)
    form = {
        "interaction": hidden(page.text, "interaction"),
        "csrf_token": hidden(page.text, "csrf_token"),
        "username": "alice",
        "password": "guess",
    }

    async with httpx.AsyncClient(base_url=issuer, cookies=cookies, timeout=10) as racer:
        answers = await asyncio.gather(*(racer.post("/login", data=form) for _ in range(RACERS)))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [401] * LIMIT + [429] * (RACERS - LIMIT)
        # Every failure counted: the right password is refused for the rest of the window.
        right = await racer.post("/login", data={**form, "password": PASSWORD})
        assert right.status_code == 429
