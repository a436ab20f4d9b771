"""Real relying parties against a provider served on a loopback port.

The npm relying party (``tests/node/relying-party.mjs``: ``openid-client`` and, for the pages,
Debian's Chromium through ``playwright-core``) runs as a subprocess: it reads its configuration as JSON
on stdin and prints one JSON result, which the tests assert on. Every subprocess has a timeout.

Nothing here is skipped when a tool is missing: a missing ``node``, ``npm ci`` or Chromium fails the
test with what to install. Deselect with ``-m "not node"`` / ``-m "not browser"`` instead.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import kubeoidc_contract as contract
from kubeoidc_provider.context import Provider
from support.live import live_provider
from support.node_rp import CHROMIUM, chromium, node, relying_party
from support.objects import b64
from support.provider import PASSWORD, RegisteredClient, register


@dataclass
class Application:
    """A client registered with the provider, and what its relying party needs to know."""

    provider: Provider
    registered: RegisteredClient
    display_name: str
    description: str
    scope: str
    post_logout_redirect_uri: str | None = None

    @property
    def client_id(self) -> str:
        return self.registered.client_id

    @property
    def secret(self) -> str | None:
        return self.registered.secret

    @property
    def redirect_uri(self) -> str:
        return self.registered.redirect_uri

    def rp_config(self, **overrides: Any) -> dict[str, Any]:
        """The relying party's configuration: issuer, credentials, redirect URIs, user and scope."""
        config: dict[str, Any] = {
            "issuer": self.provider.settings.issuer,
            "clientId": self.client_id,
            "clientSecret": self.secret,
            "redirectUri": self.redirect_uri,
            "postLogoutRedirectUri": self.post_logout_redirect_uri,
            "scope": self.scope,
            "username": "alice",
            "password": PASSWORD,
            "chromium": CHROMIUM,
        }
        config.update(overrides)
        return config

    def rotate_secret(self, new_secret: str) -> None:
        """What the operator does on a rotation (grace period 0): the Secret now holds a new value."""
        secret_obj = copy.deepcopy(self.registered.objects[1])
        secret_obj["data"][contract.CLIENT_SECRET_KEY] = b64(new_secret)
        self.provider.registry.upsert_secret(secret_obj)
        self.registered.secret = new_secret
        self.registered.objects = (self.registered.objects[0], secret_obj)


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    """One provider per test module; each test registers clients of its own."""
    with live_provider() as served:
        yield served


@pytest.fixture(scope="module")
def register_app(provider: Provider) -> Callable[..., Application]:
    """Register clients with the module's provider (see ``register_application``)."""

    def register_on_provider(name: str, **options: Any) -> Application:
        return register_application(provider, name, **options)

    return register_on_provider


def register_application(
    provider: Provider,
    name: str,
    *,
    display_name: str,
    description: str,
    scopes: list[str],
    redirect_uri: str,
    post_logout_redirect_uri: str | None = None,
    **options: Any,
) -> Application:
    """Register a client as the operator would publish it, with its own display name and description."""
    registered = register(
        provider.registry,
        name,
        redirect_uris=[redirect_uri] if redirect_uri else [],
        post_logout_redirect_uris=[post_logout_redirect_uri] if post_logout_redirect_uri else [],
        scopes=scopes,
        **options,
    )
    oidcclient = copy.deepcopy(registered.objects[0])
    oidcclient["spec"].update(displayName=display_name, description=description)
    provider.registry.upsert_oidcclient(oidcclient)
    registered.objects = (oidcclient, registered.objects[1])
    return Application(
        provider, registered, display_name, description, " ".join(scopes), post_logout_redirect_uri
    )


__all__ = ["chromium", "node", "relying_party"]
