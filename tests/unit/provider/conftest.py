"""Fixtures for the provider's TestClient suite: a provider, its app in a TestClient, a browser, clients.

The state store runs on a clock the tests can move forward (``clock.advance``), so a code or a
session expires without waiting; signed tokens keep real time. ``storage_kind`` picks the store
(memory by default); a module overrides it to run its tests against SQLite too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from kubeoidc_provider.app import build_provider, create_app
from kubeoidc_provider.context import Provider
from kubeoidc_provider.keys import KeySet
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.storage import Storage
from kubeoidc_provider.storage.memory import MemoryStorage
from kubeoidc_provider.storage.sqlite import SQLiteStorage
from kubeoidc_provider.users import StaticUserDirectory
from support.provider import (
    ISSUER,
    RegisteredClient,
    register,
    register_machine_client,
    signing_jwks,
    users_yaml,
)
from support.provider_flow import Browser, RelyingParty

WEB_LOGOUT_URI = "https://web-app.example.com/signed-out"
SPA_REDIRECT_URI = "http://127.0.0.1:5173/callback"


class StorageClock:
    """The state store's clock: real time, plus whatever the test has skipped ahead."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(scope="session")
def users() -> StaticUserDirectory:
    return StaticUserDirectory.from_yaml(users_yaml())


@pytest.fixture(scope="session")
def key_sets() -> Callable[[str], KeySet]:
    """One parsed key set per algorithm for the whole run: parsing a key costs tens of milliseconds."""
    parsed: dict[str, KeySet] = {}

    def key_set(alg: str) -> KeySet:
        if alg not in parsed:
            parsed[alg] = KeySet.from_jwks(signing_jwks(alg))
        return parsed[alg]

    return key_set


@pytest.fixture
def clock() -> StorageClock:
    return StorageClock()


@pytest.fixture
def storage_kind() -> str:
    return "memory"


@pytest.fixture
def open_store(storage_kind: str, clock: StorageClock, tmp_path: Path) -> Callable[[], Storage]:
    def open_store() -> Storage:
        if storage_kind == "sqlite":
            return SQLiteStorage.from_url(f"sqlite:///{tmp_path}/state.db", clock=clock)
        return MemoryStorage(clock=clock)

    return open_store


@pytest.fixture
def make_provider(
    open_store: Callable[[], Storage], users: StaticUserDirectory, key_sets: Callable[[str], KeySet]
) -> Callable[..., Provider]:
    """Build a provider; keyword arguments are settings (``issuer``, ``code_ttl``...) plus ``alg``,
    ``keys``, ``registry`` and ``storage``."""

    def make(
        *,
        alg: str = "RS256",
        registry: ClientRegistry | None = None,
        storage: Storage | None = None,
        keys: KeySet | None = None,
        **settings: Any,
    ) -> Provider:
        if registry is None:
            registry = ClientRegistry()
            registry.mark_ready()
        settings.setdefault("issuer", ISSUER)
        return build_provider(
            ProviderSettings(storage_url="memory://", **settings),
            registry=registry,
            users=users,
            keys=keys or key_sets(alg),
            storage=storage or open_store(),
        )

    return make


@pytest.fixture
def serve() -> Callable[..., Any]:
    """``with serve(provider) as http:`` a TestClient whose base URL is the provider's issuer."""

    @contextmanager
    def serve(provider: Provider) -> Iterator[TestClient]:
        with TestClient(create_app(provider), base_url=provider.settings.issuer) as http:
            yield http

    return serve


@pytest.fixture
def provider(make_provider: Callable[..., Provider]) -> Provider:
    return make_provider()


@pytest.fixture
def http(provider: Provider, serve: Callable[..., Any]) -> Iterator[TestClient]:
    with serve(provider) as http:
        yield http


@pytest.fixture
def browser(http: TestClient, provider: Provider) -> Browser:
    return Browser(http, provider.settings.issuer)


@pytest.fixture
def web(provider: Provider) -> RegisteredClient:
    """A confidential web application: client_secret_basic, code and refresh token grants."""
    return register(provider.registry, "web-app", post_logout_redirect_uris=[WEB_LOGOUT_URI])


@pytest.fixture
def spa(provider: Provider) -> RegisteredClient:
    """A public single-page application: no secret, PKCE required."""
    return register(provider.registry, "spa", public=True, redirect_uris=[SPA_REDIRECT_URI])


@pytest.fixture
def m2m(provider: Provider) -> RegisteredClient:
    """A service calling an API with its own credentials (client_credentials, a custom scope)."""
    return register_machine_client(provider.registry)


@pytest.fixture
def web_rp(http: TestClient, web: RegisteredClient) -> RelyingParty:
    return RelyingParty(http, web)


@pytest.fixture
def spa_rp(http: TestClient, spa: RegisteredClient) -> RelyingParty:
    return RelyingParty(http, spa)


@pytest.fixture
def m2m_rp(http: TestClient, m2m: RegisteredClient) -> RelyingParty:
    return RelyingParty(http, m2m)
