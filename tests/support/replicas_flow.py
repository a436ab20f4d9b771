"""A browser and a relying party in front of several provider replicas, with the test as load balancer.

Every replica serves the same issuer; nothing listens at the issuer's own address. The test decides
which replica gets each request: a URL of the issuer is sent to the replica named, as a load balancer
would forward it. The browser keeps one cookie jar for the issuer's host (cookies ignore the port), so
a session cookie set by one replica goes to the other too, as it would behind one address.
"""

from __future__ import annotations

import itertools
import re
import subprocess
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2

from support.provider import PASSWORD, pkce_pair

_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class Replica:
    """One provider process, reached directly at ``base_url``."""

    name: str
    base_url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Client:
    """A confidential web application registered on every replica (client_secret_basic)."""

    client_id: str
    secret: str
    redirect_uri: str


@dataclass(frozen=True)
class AuthRequest:
    params: dict[str, str]
    verifier: str


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert found is not None, f"no hidden input {name!r} in the page"
    return found.group(1)


def location(response: httpx2.Response) -> str:
    assert response.status_code in _REDIRECTS, f"expected a redirect, got {response.status_code}"
    return str(response.headers["location"])


def answer(response: httpx2.Response, client: Client) -> dict[str, str]:
    """The parameters of the provider's answer to the client (a redirect to its redirect URI)."""
    target = location(response)
    assert target.startswith(client.redirect_uri + "?"), f"not an answer to the client: {target}"
    return {name: values[0] for name, values in parse_qs(urlsplit(target).query).items()}


def code_of(response: httpx2.Response, client: Client) -> str:
    params = answer(response, client)
    assert "code" in params, f"no code in the answer: {params}"
    return params["code"]


class Browser:
    """One browser (one cookie jar) whose requests to the issuer go to the replica each call names."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.http = httpx2.Client(timeout=10.0, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def url(self, replica: Replica, url: str) -> str:
        """Where the load balancer sends a URL of the issuer (or a path under it)."""
        if url.startswith("/"):
            return replica.base_url + url
        assert url.startswith(self.issuer + "/"), f"not a URL of the provider: {url}"
        return replica.base_url + url.removeprefix(self.issuer)

    def get(self, replica: Replica, url: str, params: dict[str, str] | None = None) -> httpx2.Response:
        return self.http.get(self.url(replica, url), params=params)

    def post(self, replica: Replica, url: str, data: dict[str, str]) -> httpx2.Response:
        return self.http.post(self.url(replica, url), data=data)

    def authorize(self, replica: Replica, params: dict[str, str]) -> httpx2.Response:
        return self.get(replica, "/authorize", params)

    def is_ours(self, response: httpx2.Response) -> bool:
        return response.status_code in _REDIRECTS and location(response).startswith(self.issuer + "/")

    def login(
        self, replica: Replica, page: httpx2.Response, username: str = "alice", password: str = PASSWORD
    ) -> httpx2.Response:
        form = {
            "interaction": hidden(page.text, "interaction"),
            "csrf_token": hidden(page.text, "csrf_token"),
            "username": username,
            "password": password,
        }
        return self.post(replica, "/login", form)

    def consent(self, replica: Replica, page: httpx2.Response) -> httpx2.Response:
        form = {
            "interaction": hidden(page.text, "interaction"),
            "csrf_token": hidden(page.text, "csrf_token"),
            "decision": "allow",
        }
        return self.post(replica, "/consent", form)

    def finish(self, response: httpx2.Response, *route: Replica) -> httpx2.Response:
        """Follow the provider's redirects, signing in and consenting; the client's answer.

        Each request goes to the next replica of ``route``, round robin: one replica keeps the browser
        on it, two make it hop at every step (a load balancer without session affinity).
        """
        replicas = itertools.cycle(route)
        for _ in range(10):
            if not self.is_ours(response):
                return response
            url = location(response)
            page = self.get(next(replicas), url)
            path = urlsplit(url).path
            if path == "/login":
                assert page.status_code == 200, page.text
                response = self.login(next(replicas), page)
            elif path == "/consent":
                assert page.status_code == 200, page.text
                response = self.consent(next(replicas), page)
            else:
                response = page
        raise AssertionError("the provider kept redirecting to itself")

    def sign_in(self, request: AuthRequest, *route: Replica) -> httpx2.Response:
        """Authorize on ``route[0]``, then :meth:`finish` round robin over ``route`` from ``route[1]``."""
        following = route[1:] + route[:1]
        return self.finish(self.authorize(route[0], request.params), *following)


class RelyingParty:
    """The web application's back channel: token and userinfo calls, without the browser's cookies."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.http = httpx2.Client(timeout=10.0, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def auth_request(self, scope: str = "openid profile email offline_access", **extra: str) -> AuthRequest:
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.client.redirect_uri,
            "scope": scope,
            "state": "st-" + verifier[:8],
            "nonce": "n-" + verifier[8:16],
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return AuthRequest(params, verifier)

    def token(self, replica: Replica, data: dict[str, str]) -> httpx2.Response:
        auth = (self.client.client_id, self.client.secret)
        return self.http.post(replica.base_url + "/token", data=data, auth=auth)

    def exchange(self, replica: Replica, request: AuthRequest, code: str) -> httpx2.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.client.redirect_uri,
            "code_verifier": request.verifier,
        }
        return self.token(replica, data)

    def refresh(self, replica: Replica, refresh_token: str) -> httpx2.Response:
        return self.token(replica, {"grant_type": "refresh_token", "refresh_token": refresh_token})

    def userinfo(self, replica: Replica, access_token: str) -> httpx2.Response:
        headers = {"Authorization": f"Bearer {access_token}"}
        return self.http.get(replica.base_url + "/userinfo", headers=headers)


def tokens_of(response: httpx2.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def oauth_error(response: httpx2.Response) -> str:
    """The RFC 6749 §5.2 error code of a token endpoint refusal."""
    assert response.status_code in (400, 401), f"expected a refusal, got {response.status_code}"
    return str(response.json()["error"])


def bearer_error(response: httpx2.Response) -> str:
    """The RFC 6750 §3 error in a 401's ``WWW-Authenticate`` challenge."""
    assert response.status_code == 401, f"expected 401, got {response.status_code}: {response.text}"
    found = re.search(r'error="([^"]+)"', response.headers.get("www-authenticate", ""))
    assert found is not None, response.headers
    return found.group(1)
