"""Driving the provider as a browser and a relying party do, through Starlette's TestClient or HTTP.

``Browser`` follows the provider's own redirects and fills in the login and consent forms the way a
person would; ``RelyingParty`` builds authorization requests and calls the back-channel endpoints with
the client authentication its registration names. Both look only at what crosses HTTP.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx

from kubeoidc_contract import SERVICE_ACCOUNT_AUTH_METHOD
from kubeoidc_provider.assertions import JWT_BEARER
from support.provider import PASSWORD, RegisteredClient, pkce_pair

SESSION_COOKIE = "kubeoidc_session"
_REDIRECTS = (301, 302, 303, 307, 308)


def hidden(html: str, name: str) -> str:
    """The value of a form's hidden input."""
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert found is not None, f"no hidden input {name!r} in the page"
    return found.group(1)


def page_text(response: httpx.Response) -> str:
    """An HTML page's text with its character references resolved, to look for sentences in."""
    return html.unescape(response.text)


def location(response: httpx.Response) -> str:
    assert response.status_code in _REDIRECTS, f"expected a redirect, got {response.status_code}"
    return response.headers["location"]


def redirect_params(response: httpx.Response) -> dict[str, str]:
    """The query parameters of a redirect's Location, each given once."""
    query = parse_qs(urlsplit(location(response)).query, keep_blank_values=True)
    assert all(len(values) == 1 for values in query.values()), f"a parameter repeats: {query}"
    return {name: values[0] for name, values in query.items()}


def redirect_target(response: httpx.Response) -> str:
    """The Location without its query: where the browser is sent."""
    parts = urlsplit(location(response))
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


@dataclass
class AuthRequest:
    """An authorization request as a relying party sends it, with the PKCE verifier it keeps."""

    params: dict[str, str]
    verifier: str | None

    @property
    def redirect_uri(self) -> str:
        return self.params["redirect_uri"]


class Browser:
    """A browser with its cookie jar, pointed at the provider (in process, or served: any client whose
    base URL is the issuer)."""

    def __init__(self, http: httpx.Client, issuer: str) -> None:
        self.http = http
        self.issuer = issuer

    @property
    def session_cookie(self) -> str | None:
        return self.http.cookies.get(SESSION_COOKIE)

    @contextmanager
    def elsewhere(self) -> Iterator[Browser]:
        """The same provider seen from another browser (an empty cookie jar) for a while."""
        saved = self.http.cookies
        self.http.cookies = httpx.Cookies()
        try:
            yield self
        finally:
            self.http.cookies = saved

    def get(self, url: str) -> httpx.Response:
        return self.http.get(url, follow_redirects=False)

    def authorize(self, params: dict[str, str], *, method: str = "GET") -> httpx.Response:
        if method == "POST":
            return self.http.post("/authorize", data=params, follow_redirects=False)
        return self.http.get("/authorize", params=params, follow_redirects=False)

    def login(
        self, page: httpx.Response, username: str = "alice", password: str = PASSWORD, **form: str
    ) -> httpx.Response:
        data = {
            "interaction": hidden(page.text, "interaction"),
            "csrf_token": hidden(page.text, "csrf_token"),
            "username": username,
            "password": password,
            **form,
        }
        return self.http.post("/login", data=data, follow_redirects=False)

    def consent(self, page: httpx.Response, decision: str = "allow", **form: str) -> httpx.Response:
        data = {
            "interaction": hidden(page.text, "interaction"),
            "csrf_token": hidden(page.text, "csrf_token"),
            "decision": decision,
            **form,
        }
        return self.http.post("/consent", data=data, follow_redirects=False)

    def is_ours(self, response: httpx.Response) -> bool:
        """Whether a redirect stays on the provider (login, consent, resume)."""
        return response.status_code in _REDIRECTS and location(response).startswith(self.issuer + "/")

    def finish(
        self,
        response: httpx.Response,
        *,
        username: str = "alice",
        password: str = PASSWORD,
        decision: str = "allow",
    ) -> httpx.Response:
        """Follow the provider's redirects, signing in and consenting on the way; the answer to the client."""
        for _ in range(10):
            if not self.is_ours(response):
                return response
            url = location(response)
            page = self.get(url)
            path = urlsplit(url).path
            if path == "/login":
                response = self.login(page, username, password)
            elif path == "/consent":
                response = self.consent(page, decision)
            else:
                response = page
        raise AssertionError("the provider kept redirecting to itself")

    def sign_in(self, params: dict[str, str], **options: Any) -> httpx.Response:
        return self.finish(self.authorize(params), **options)


class RelyingParty:
    """One registered client calling the provider's back-channel endpoints."""

    def __init__(self, http: httpx.Client, client: RegisteredClient) -> None:
        self.http = http
        self.client = client
        spec = client.objects[0]["spec"]
        self.auth_method: str = spec["tokenEndpointAuthMethod"]
        #: The client assertion sent with the ServiceAccount token method (a ServiceAccount's token).
        self.assertion: str | None = None

    @property
    def client_id(self) -> str:
        return self.client.client_id

    def auth_request(
        self,
        *,
        scope: str = "openid profile email",
        pkce: bool = True,
        state: str | None = "af0ifjsldkj",
        nonce: str | None = "n-0S6_WzA2Mj",
        **extra: str,
    ) -> AuthRequest:
        params = {
            "response_type": "code",
            "client_id": self.client.client_id,
            "redirect_uri": self.client.redirect_uri,
            "scope": scope,
        }
        if state is not None:
            params["state"] = state
        if nonce is not None:
            params["nonce"] = nonce
        verifier = None
        if pkce:
            verifier, challenge = pkce_pair()
            params.update(code_challenge=challenge, code_challenge_method="S256")
        params.update(extra)
        return AuthRequest(params, verifier)

    def post(
        self, path: str, data: dict[str, str], *, method: str | None = None, secret: str | None = None
    ) -> httpx.Response:
        """POST a form, authenticated as the registration says (or as ``method`` says)."""
        method = method or self.auth_method
        secret = secret if secret is not None else (self.client.secret or "")
        form = dict(data)
        auth: tuple[str, str] | None = None
        if method == "client_secret_basic":
            auth = (self.client.client_id, secret)
        elif method == "client_secret_post":
            form.update(client_id=self.client.client_id, client_secret=secret)
        elif method == "none":
            form["client_id"] = self.client.client_id
        elif method == SERVICE_ACCOUNT_AUTH_METHOD:
            form.update(
                client_id=self.client.client_id,
                client_assertion_type=JWT_BEARER,
                client_assertion=self.assertion or "",
            )
        return self.http.post(path, data=form, auth=httpx.USE_CLIENT_DEFAULT if auth is None else auth)

    def token(self, data: dict[str, str], **options: Any) -> httpx.Response:
        return self.post("/token", data, **options)

    def exchange(self, request: AuthRequest, code: str, **overrides: str | None) -> httpx.Response:
        data: dict[str, str | None] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.redirect_uri,
            "code_verifier": request.verifier,
        }
        data.update(overrides)
        return self.token({name: value for name, value in data.items() if value is not None})

    def refresh(self, refresh_token: str, **extra: str) -> httpx.Response:
        return self.token({"grant_type": "refresh_token", "refresh_token": refresh_token, **extra})

    def revoke(self, token: str, **extra: str) -> httpx.Response:
        return self.post("/revoke", {"token": token, **extra})

    def introspect(self, token: str, **extra: str) -> httpx.Response:
        return self.post("/introspect", {"token": token, **extra})


def code_of(response: httpx.Response) -> str:
    """The authorization code of a successful answer to the client."""
    params = redirect_params(response)
    assert "code" in params, f"no code in the answer: {params}"
    return params["code"]


def sign_in_for_code(
    browser: Browser, rp: RelyingParty, *, username: str = "alice", **request_options: Any
) -> tuple[AuthRequest, str]:
    """Sign ``username`` in (if needed), consent (if asked), and return the request and its code."""
    request = rp.auth_request(**request_options)
    return request, code_of(browser.sign_in(request.params, username=username))


def sign_in_for_tokens(
    browser: Browser, rp: RelyingParty, *, username: str = "alice", **request_options: Any
) -> dict[str, Any]:
    request, code = sign_in_for_code(browser, rp, username=username, **request_options)
    response = rp.exchange(request, code)
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
