"""Everything an endpoint needs, built once at start and handed to requests through the lifespan state."""

from __future__ import annotations

import os
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import cast

from starlette.requests import Request

from kubeoidc_provider.authorization_server import ProviderServer
from kubeoidc_provider.backchannel import BackchannelLogout
from kubeoidc_provider.client_assertions import ClientAssertions
from kubeoidc_provider.feed import FeedHealth
from kubeoidc_provider.identity.directory import Directory
from kubeoidc_provider.keys import KeySet
from kubeoidc_provider.metrics import Metrics
from kubeoidc_provider.pages import Pages
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.sessions import SessionManager
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.signing import SigningKeys
from kubeoidc_provider.state import State
from kubeoidc_provider.tokens import TokenMinter
from kubeoidc_provider.users import UserDirectory

#: The cores this process may run on (every core where the platform has no affinity mask, as macOS).
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class Provider:
    """The provider's parts, shared by every request."""

    settings: ProviderSettings
    registry: ClientRegistry
    state: State
    users: UserDirectory
    signing: SigningKeys
    minter: TokenMinter
    server: ProviderServer
    sessions: SessionManager
    pages: Pages
    metrics: Metrics
    #: Threads for the token endpoint's work: signing (RSA) releases the GIL, so tokens are minted on
    #: more than one core while the event loop goes on serving.
    workers: Executor
    #: Who is who: the static users and the identity sources (``directory.sources``).
    directory: Directory
    #: Client authentication by assertion (a ServiceAccount's token), checked before Authlib runs.
    assertions: ClientAssertions
    #: Logout tokens to the clients of an ending session (Back-Channel Logout 1.0).
    backchannel: BackchannelLogout
    #: The registry's feed from the Kubernetes API (the watcher reports to it; nothing does in dev mode).
    feed: FeedHealth

    @property
    def signs_on_loop(self) -> bool:
        """Whether RSA signatures, too, are made on the event loop rather than on ``workers``: this process
        is one of as many provider processes (``--workers``) as it may use cores, so a signing thread
        would only take a core another process uses, and the hop to it and back is pure cost."""
        return self.settings.workers >= _CORES

    @property
    def keys(self) -> KeySet:
        """The key set in use now (it changes when keys rotate)."""
        return self.signing.keys

    @property
    def discovery(self) -> bytes:
        """The discovery document's bytes, computed when the keys were loaded."""
        return self.signing.discovery

    def url(self, path: str) -> str:
        """The public URL of one of our endpoints."""
        return f"{self.settings.issuer}{path}"


def provider_of(request: Request) -> Provider:
    return cast(Provider, request.state.provider)
