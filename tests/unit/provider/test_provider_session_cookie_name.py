"""The session cookie takes the ``__Host-`` prefix wherever its rules hold, so that a sibling subdomain
cannot plant a session cookie for the issuer's host."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import Response

from kubeoidc_provider.sessions import BrowserSession, SessionManager
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.state import Session


def set_cookie_header(issuer: str, make_provider: Any) -> str:
    provider = make_provider(issuer=issuer)
    manager = SessionManager(ProviderSettings(issuer=issuer, storage_url="memory://"), provider.state)

    response = Response()
    manager.set_cookie(BrowserSession("sid", Session(csrf_token="c"), created=True), response)
    return response.headers["set-cookie"]


@pytest.mark.parametrize(
    ("issuer", "name"),
    [
        ("https://login.example.com", "__Host-kubeoidc_session"),
        ("https://login.example.com/", "__Host-kubeoidc_session"),
        ("https://example.com/auth", "kubeoidc_session"),  # scoped to a path: the prefix needs Path=/
        ("http://127.0.0.1:8080", "kubeoidc_session"),  # not Secure on loopback: the prefix needs it
    ],
)
def test_the_session_cookie_is_host_prefixed_where_secure_at_the_root(
    make_provider: Any, issuer: str, name: str
) -> None:
    header = set_cookie_header(issuer, make_provider)

    assert header.startswith(f"{name}=sid;")
    if name.startswith("__Host-"):
        assert "Path=/;" in header or header.endswith("Path=/")
        assert "Secure" in header
        assert "Domain" not in header
