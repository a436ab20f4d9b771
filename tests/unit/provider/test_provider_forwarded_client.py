"""The client address behind proxies: the rightmost ``X-Forwarded-For`` entry that is not a trusted
proxy, never an entry the client wrote itself; failed logins are counted against it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2 as httpx
import pytest

from kubeoidc_provider.forwarded import TrustedProxies
from kubeoidc_provider.settings import ProviderSettings, SettingsError
from support.live import live_provider
from support.provider import ISSUER, PASSWORD, register
from support.provider_flow import Browser, RelyingParty, location

INGRESS = "127.0.0.1,10.0.0.0/8"


@pytest.mark.parametrize(
    ("trusted", "forwarded_for", "client"),
    [
        # One ingress: it appended the address it saw; whatever the client wrote is further left.
        (INGRESS, ["198.51.100.1", "203.0.113.9"], "203.0.113.9"),
        # Two proxies: the inner one (trusted) forwarded for the outer one's client.
        (INGRESS, ["198.51.100.1", "203.0.113.9", "10.0.0.5"], "203.0.113.9"),
        # A client inside the trusted range, with a trusted-looking address of its choice on the left.
        (INGRESS, ["10.9.9.9", "10.1.1.1"], "10.1.1.1"),
        # Trusting everyone still never takes the client's own word (the leftmost entry).
        ("*", ["198.51.100.1", "203.0.113.9"], "203.0.113.9"),
        # Ports and IPv6, as some proxies write them.
        (INGRESS, ["198.51.100.1", "203.0.113.9:4711"], "203.0.113.9"),
        ("::1,fd00::/8", ["2001:db8::7", "[2001:db8::8]:443", "fd00::1"], "2001:db8::8"),
        (INGRESS, [" ", ""], None),
    ],
)
def test_the_client_is_the_rightmost_untrusted_hop(
    trusted: str, forwarded_for: list[str], client: str | None
) -> None:
    assert TrustedProxies(trusted).client_of(forwarded_for) == client


def test_remembered_answers_stay_right_however_many_addresses_come() -> None:
    trusted = TrustedProxies(INGRESS)
    # More distinct peers than the memo holds: it empties and fills again, answers unchanged.
    peers = [f"10.{n // 256}.{n % 256}.1" for n in range(1500)] + [
        f"198.51.{n // 256}.{n % 256}" for n in range(1500)
    ]

    for _ in range(2):
        assert [peer in trusted for peer in peers] == [peer.startswith("10.") for peer in peers]
    assert "127.0.0.1" in trusted
    assert "not-an-address" not in trusted
    assert "not-an-address" not in trusted


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "ingress.example.com", "10.0.0.1/8/8"])
def test_a_trusted_proxy_that_is_not_an_address_or_cidr_is_refused_at_start(entry: str) -> None:
    with pytest.raises(SettingsError, match="not an IP address or CIDR"):
        ProviderSettings(issuer=ISSUER, forwarded_allow_ips=f"127.0.0.1,{entry}")


@pytest.fixture
def served() -> Iterator[tuple[Browser, RelyingParty]]:
    """A real server (uvicorn over loopback) whose ingress is this test, allowing one failed login per
    user and four per address."""
    with live_provider(login_attempts=1, login_window=60, forwarded_allow_ips=INGRESS) as provider:
        client = register(provider.registry, "web-app")
        with httpx.Client(base_url=provider.settings.issuer, timeout=10) as http:
            yield Browser(http, provider.settings.issuer), RelyingParty(http, client)


@pytest.mark.parametrize(
    ("spoofed", "real"),
    [("198.51.100.{n}", "203.0.113.9"), ("10.0.0.{n}", "10.0.0.200")],
    ids=["outside-client", "client-in-a-trusted-range"],
)
def test_a_spoofed_leftmost_forwarded_address_cannot_escape_the_login_throttle(
    served: tuple[Browser, RelyingParty], spoofed: str, real: str
) -> None:
    browser, rp = served
    page = browser.get(location(browser.authorize(rp.auth_request().params)))

    def login(username: str, password: str, address: str) -> int:
        browser.http.headers["X-Forwarded-For"] = address
        return browser.login(page, username, password).status_code

    # Four failures (different users) from one real address, each claiming another origin on the left.
    for n in range(4):
        assert login(f"user{n}", "guess", f"{spoofed.format(n=n)}, {real}") == 401

    assert login("alice", PASSWORD, f"{spoofed.format(n=99)}, {real}") == 429
    # Another real address (what the ingress appended) is counted apart: the header is read, right hop.
    assert login("alice", PASSWORD, f"{spoofed.format(n=99)}, 203.0.113.77") == 303
