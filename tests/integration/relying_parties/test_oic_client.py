"""PyPI ``oic`` (pyoidc) as the relying party, with a plain HTTP client as the user's browser.

``oic`` does what a Python web application does: discovery, a statically registered client, the
authorization request with PKCE S256, nonce and state, parsing the redirect, the code exchange with
``client_secret_basic``, ID token verification against the provider's JWKS, userinfo and refresh.
The user's part (the login and consent forms, their CSRF and interaction fields, the session cookie)
is played by ``httpx2``, following each redirect by hand until the one to the client's redirect URI.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx2
import pytest
from oic.oic import Client
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationRequest,
    AuthorizationResponse,
    OpenIDSchema,
    RegistrationResponse,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from oic.utils.keyio import KeyBundle

from kubeoidc_provider.context import Provider
from support.client_keys import ClientKey, register_key_client
from support.provider import ALICE_PROFILE, PASSWORD

SCOPES = ["openid", "profile", "email", "offline_access"]
#: Every hop of the sign-in is a redirect the test follows itself; more than this is a loop.
MAX_REDIRECTS = 10


class _FormReader(HTMLParser):
    """The first form of a page: its action and hidden fields (interaction, csrf_token)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attributes.get("action") or ""
        elif tag == "input" and attributes.get("type") == "hidden" and attributes.get("name"):
            self.hidden[str(attributes["name"])] = attributes.get("value") or ""


class Browser:
    """A user agent without JavaScript: a cookie jar, forms, and redirects followed one by one."""

    def __init__(self, http: httpx2.Client, stop_at: str) -> None:
        self.http = http
        self.stop_at = stop_at
        self.visited: list[str] = []

    def follow(self, response: httpx2.Response) -> httpx2.Response | str:
        """Follow redirects until a page, or return the URL when it leads to the client."""
        for _ in range(MAX_REDIRECTS):
            if response.status_code not in (302, 303):
                return response
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(self.stop_at):
                return location
            self.visited.append(urlsplit(location).path)
            response = self.http.get(location)
        raise AssertionError(f"more than {MAX_REDIRECTS} redirects: {self.visited}")

    def submit(self, page: httpx2.Response, fields: dict[str, str]) -> httpx2.Response | str:
        form = _FormReader()
        form.feed(page.text)
        assert form.action is not None, page.text
        assert {"interaction", "csrf_token"} <= set(form.hidden), form.hidden
        response = self.http.post(urljoin(str(page.url), form.action), data={**form.hidden, **fields})
        return self.follow(response)


@pytest.fixture(scope="module")
def web_app(register_app: Callable[..., Any]) -> Any:
    return register_app(
        "python-portal",
        display_name="Python Portal",
        description="A Flask application using pyoidc.",
        scopes=SCOPES,
        redirect_uri="https://portal.example.test/oidc/callback",
    )


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(follow_redirects=False, timeout=10) as client:
        yield client


def oic_client(provider: Provider, app: Any) -> Client:
    """Discovery, and the registration the operator's Secret gives an application (no dynamic one)."""
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(provider.settings.issuer)
    client.store_registration_info(
        RegistrationResponse(
            client_id=app.client_id,
            client_secret=app.secret,
            redirect_uris=[app.redirect_uri],
            token_endpoint_auth_method="client_secret_basic",
        )
    )
    return client


def sign_in(client: Client, app: Any, http: httpx2.Client) -> tuple[AuthorizationResponse, str, Browser]:
    """The authorization request with PKCE, and the user's login and consent; returns the response."""
    pkce, verifier = client.add_code_challenge()
    # request_info (not construct_...) records state → nonce, which oic checks in the ID token.
    url, _, _, request = client.request_info(
        AuthorizationRequest,
        method="GET",
        request_args={
            "client_id": app.client_id,
            "response_type": "code",
            "scope": SCOPES,
            "redirect_uri": app.redirect_uri,
            "state": "oic-state-1",
            "nonce": "oic-nonce-1",
            **pkce,
        },
    )
    assert request["code_challenge_method"] == "S256"
    browser = Browser(http, stop_at=app.redirect_uri)
    login = browser.follow(http.get(url))
    assert isinstance(login, httpx2.Response)
    assert login.status_code == 200
    assert "Python Portal" in login.text
    consent = browser.submit(login, {"username": "alice", "password": PASSWORD})
    assert isinstance(consent, httpx2.Response)
    assert consent.status_code == 200
    assert "A Flask application using pyoidc." in consent.text
    redirect = browser.submit(consent, {"decision": "allow"})
    assert isinstance(redirect, str), redirect.text
    assert redirect.startswith(f"{app.redirect_uri}?")
    response = client.parse_response(
        AuthorizationResponse, info=urlsplit(redirect).query, sformat="urlencoded"
    )
    assert isinstance(response, AuthorizationResponse)  # parse_response is typed as any Message
    return response, verifier, browser


# oic's key bundle logs "Wrong Content_type" for the JWKS: the provider serves it as
# application/jwk-set+json (RFC 7517 §8.5.1), oic expects application/json; it is a log line, no warning.
def test_oic_completes_the_code_flow_with_pkce_and_verifies_the_id_token(
    provider: Provider, web_app: Any, http: httpx2.Client
) -> None:
    client = oic_client(provider, web_app)
    assert client.provider_info["issuer"] == provider.settings.issuer
    assert client.provider_info["code_challenge_methods_supported"] == ["S256"]

    response, verifier, browser = sign_in(client, web_app, http)
    assert browser.visited == ["/login", "/authorize/resume", "/consent", "/authorize/resume"]
    assert response["state"] == "oic-state-1"
    assert response["iss"] == provider.settings.issuer

    # oic checks the ID token's signature against the JWKS it fetched in discovery, its iss, aud, exp
    # and at_hash, and the nonce it recorded for this state.
    tokens = client.do_access_token_request(
        state=response["state"],
        request_args={
            "code": response["code"],
            "code_verifier": verifier,
            "redirect_uri": web_app.redirect_uri,
        },
        authn_method="client_secret_basic",
    )
    assert isinstance(tokens, AccessTokenResponse), tokens.to_dict()
    id_token = tokens["id_token"]
    assert id_token["iss"] == provider.settings.issuer
    assert id_token["aud"] == [web_app.client_id]
    assert id_token["nonce"] == "oic-nonce-1"
    assert id_token["sub"] == "7b0c2f6e-alice"
    assert id_token["email"] == "alice@example.com"
    assert tokens["scope"] == SCOPES
    signed_by = id_token.jws_header["kid"]
    assert signed_by in {key["kid"] for key in provider.keys.public_jwks["keys"]}
    assert signed_by in {key.kid for key in client.keyjar.get_issuer_keys(provider.settings.issuer)}

    userinfo = client.do_user_info_request(state=response["state"], method="GET")
    assert isinstance(userinfo, OpenIDSchema), userinfo.to_dict()
    assert userinfo.to_dict() == {
        "sub": "7b0c2f6e-alice",
        **ALICE_PROFILE,
        "email": "alice@example.com",
        "email_verified": True,
    }

    refreshed = client.do_access_token_refresh(state=response["state"], authn_method="client_secret_basic")
    assert isinstance(refreshed, AccessTokenResponse), refreshed.to_dict()
    assert refreshed["refresh_token"] != tokens["refresh_token"]
    assert refreshed["id_token"]["sub"] == "7b0c2f6e-alice"


def test_oic_sees_access_denied_when_the_user_refuses_consent(
    provider: Provider, web_app: Any, http: httpx2.Client
) -> None:
    client = oic_client(provider, web_app)
    # oic's default: the request as a form POST, which OIDC Core §3.1.2.1 obliges providers to accept.
    url, body, http_args, _ = client.request_info(
        AuthorizationRequest,
        method="POST",
        request_args={
            "client_id": web_app.client_id,
            "response_type": "code",
            "scope": ["openid"],
            "redirect_uri": web_app.redirect_uri,
            "state": "oic-state-2",
            "nonce": "oic-nonce-2",
            **client.add_code_challenge()[0],
        },
    )
    assert "?" not in url
    browser = Browser(http, stop_at=web_app.redirect_uri)
    login = browser.follow(http.post(url, content=body, headers=http_args["headers"]))
    assert isinstance(login, httpx2.Response)
    consent = browser.submit(login, {"username": "bob", "password": PASSWORD})
    assert isinstance(consent, httpx2.Response)
    redirect = browser.submit(consent, {"decision": "deny"})
    assert isinstance(redirect, str)
    response = client.parse_response(
        AuthorizationResponse, info=urlsplit(redirect).query, sformat="urlencoded"
    )
    # RFC 6749 §4.1.2.1: the refusal goes back to the client, with its state.
    assert response["error"] == "access_denied"
    assert response["state"] == "oic-state-2"


@dataclass
class _KeyApp:
    client_id: str
    redirect_uri: str


def test_op_clientauth_privatejwt_oic_exchanges_the_code_with_an_assertion_signed_by_its_rsa_key(
    provider: Provider, http: httpx2.Client
) -> None:
    key = ClientKey("RS256")
    registered = register_key_client(
        provider.registry,
        "python-portal-key",
        keys=[key],
        scopes=SCOPES,
        redirect_uris=["https://portal-key.example.test/oidc/callback"],
        grant_types=["authorization_code", "refresh_token"],
    )
    oidcclient = copy.deepcopy(registered.objects[0])
    oidcclient["spec"].update(displayName="Python Portal", description="A Flask application using pyoidc.")
    provider.registry.upsert_oidcclient(oidcclient)
    app = _KeyApp(registered.client_id, registered.redirect_uri)
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(provider.settings.issuer)
    client.store_registration_info(
        RegistrationResponse(
            client_id=app.client_id,
            redirect_uris=[app.redirect_uri],
            token_endpoint_auth_method="private_key_jwt",
            token_endpoint_auth_signing_alg="RS256",
        )
    )
    client.keyjar.add_kb("", KeyBundle(keys=[key.private_jwk()], keyusage="sig"))
    assert "private_key_jwt" in client.provider_info["token_endpoint_auth_methods_supported"]

    response, verifier, _ = sign_in(client, app, http)
    # oic signs with its audience the token endpoint; lifetime: its default (600 s) is above the bound.
    tokens = client.do_access_token_request(
        state=response["state"],
        request_args={"code": response["code"], "code_verifier": verifier, "redirect_uri": app.redirect_uri},
        authn_method="private_key_jwt",
        lifetime=60,
    )

    assert isinstance(tokens, AccessTokenResponse), tokens.to_dict()
    assert tokens["id_token"]["aud"] == [app.client_id]
