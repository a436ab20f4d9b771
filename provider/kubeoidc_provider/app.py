"""``create_app``: the provider's Starlette application, assembled from its parts; ``create_health_app``:
its health and metrics endpoints, for a port of their own.

The parts (registry, users, keys, storage) are passed in, so tests, the dev mode and a cluster
deployment build the same app from different sources. Routes live under the issuer's path.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

import kubeoidc_contract as contract
from kubeoidc_provider.authorization_server import ProviderServer
from kubeoidc_provider.backchannel import BackchannelLogout
from kubeoidc_provider.body_limits import EXCEPTION_HANDLERS, BodyLimits
from kubeoidc_provider.client_assertions import ClientAssertions
from kubeoidc_provider.cluster_issuer import ClusterIssuer
from kubeoidc_provider.context import Provider
from kubeoidc_provider.cors import cors_middleware
from kubeoidc_provider.endpoints import (
    authorize,
    consent,
    device,
    device_authorization,
    end_session,
    health,
    introspection,
    login,
    revocation,
    token,
    upstream_login,
    userinfo,
)
from kubeoidc_provider.endpoints.introspection_lane import IntrospectionLane
from kubeoidc_provider.endpoints.published import PublishedDocuments
from kubeoidc_provider.endpoints.token_lane import TokenLane
from kubeoidc_provider.endpoints.userinfo_lane import UserinfoLane
from kubeoidc_provider.feed import FeedHealth
from kubeoidc_provider.forwarded import ForwardedHeaders, TrustedProxies
from kubeoidc_provider.identity.catalog import SourceCatalog
from kubeoidc_provider.identity.directory import Directory
from kubeoidc_provider.keys import KeySet
from kubeoidc_provider.metrics import Metrics
from kubeoidc_provider.pages import Pages
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.remote_jwks import RemoteKeySets
from kubeoidc_provider.service_accounts import ServiceAccountDirectory
from kubeoidc_provider.sessions import SessionManager
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.signing import SigningKeys
from kubeoidc_provider.state import State
from kubeoidc_provider.storage import Storage
from kubeoidc_provider.tokens import TokenMinter
from kubeoidc_provider.users import UserDirectory

#: Threads minting tokens: enough to keep every core signing while the event loop parses and answers.
TOKEN_WORKERS = max(2, os.cpu_count() or 2)
#: Authlib logs issued tokens at DEBUG: its loggers never go below INFO, whatever the root level.
_QUIET_LOGGERS = ("authlib",)
# Read beside this module, as the templates are (``pages``): the package is installed as files.
_STYLESHEET = (Path(__file__).parent / "static" / "kubeoidc.css").read_bytes()


@dataclass(frozen=True, slots=True)
class Background:
    """Something that runs beside the app (the registry's watcher): started and stopped with it."""

    start: Callable[[], None]
    stop: Callable[[], None]


def build_provider(
    settings: ProviderSettings,
    *,
    registry: ClientRegistry,
    users: UserDirectory,
    keys: KeySet,
    storage: Storage,
    cluster_issuer: ClusterIssuer | None = None,
    service_accounts: ServiceAccountDirectory | None = None,
    sources: SourceCatalog | None = None,
) -> Provider:
    """The provider's parts. Without ``cluster_issuer`` (no cluster: dev mode, tests) no ServiceAccount
    token authenticates a client; ``sources``: the identity sources (fed by the watcher or the dev mode)."""
    state = State(storage)
    feed = FeedHealth()
    metrics = Metrics()
    metrics.observe_feed(feed)
    sources = sources or SourceCatalog(settings.issuer + contract.UPSTREAM_CALLBACK_PATH)
    directory = Directory(users, sources, state, ttl=settings.refresh_token_ttl)
    signing = SigningKeys(settings.issuer, keys, on_replace=registry.set_signing_algs)
    minter = TokenMinter(
        issuer=settings.issuer,
        signing=signing,
        state=state,
        access_token_ttl=settings.access_token_ttl,
        id_token_ttl=settings.id_token_ttl,
    )
    server = ProviderServer(
        settings=settings, registry=registry, state=state, users=users, minter=minter, directory=directory
    )
    server.register_endpoint(revocation.Revocation)
    server.register_endpoint(introspection.Introspection)
    server.register_endpoint(end_session.EndSession)
    return Provider(
        settings=settings,
        registry=registry,
        state=state,
        users=users,
        signing=signing,
        minter=minter,
        server=server,
        sessions=SessionManager(settings, state),
        pages=Pages(static_prefix=settings.issuer_path),
        metrics=metrics,
        workers=ThreadPoolExecutor(TOKEN_WORKERS, thread_name_prefix="kubeoidc-token"),
        directory=directory,
        assertions=ClientAssertions(
            issuer=settings.issuer,
            registry=registry,
            state=state,
            cluster=cluster_issuer or ClusterIssuer(None),
            service_accounts=service_accounts or ServiceAccountDirectory(),
            max_uses=settings.client_assertion_uses,
            remote_keys=RemoteKeySets(registry, ssl_context=_jwks_tls(settings)),
        ),
        backchannel=BackchannelLogout(
            issuer=settings.issuer, signing=signing, registry=registry, state=state
        ),
        feed=feed,
    )


def _jwks_tls(settings: ProviderSettings) -> ssl.SSLContext:
    """How clients' ``jwksURI`` servers are verified: the system's CAs, plus the configured bundle."""
    context = ssl.create_default_context()
    if settings.client_jwks_ca_file is not None:
        context.load_verify_locations(cafile=settings.client_jwks_ca_file)
    return context


def routes() -> list[BaseRoute]:
    return [
        Route("/authorize", authorize.authorize, methods=["GET", "POST"]),
        Route("/authorize/resume", authorize.resume, methods=["GET"]),
        Route("/login", login.login_page, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Route("/login/upstream", upstream_login.begin, methods=["POST"]),
        Route(contract.UPSTREAM_CALLBACK_PATH, upstream_login.callback, methods=["GET"]),
        Route("/consent", consent.consent_page, methods=["GET"]),
        Route("/consent", consent.consent_submit, methods=["POST"]),
        Route("/token", token.token, methods=["POST"]),
        Route(device_authorization.PATH, device_authorization.device_authorization, methods=["POST"]),
        Route(device_authorization.VERIFICATION_PATH, device.device_page, methods=["GET"]),
        Route(device_authorization.VERIFICATION_PATH, device.device_submit, methods=["POST"]),
        Route("/userinfo", userinfo.userinfo, methods=["GET", "POST"]),
        Route("/revoke", revocation.revoke, methods=["POST"]),
        Route("/introspect", introspection.introspect, methods=["POST"]),
        Route("/logout", end_session.end_session, methods=["GET", "POST"]),
        Route("/static/kubeoidc.css", _stylesheet, methods=["GET"]),
    ]


def create_health_app(provider: Provider) -> ASGIApp:
    """The health port's app: ``/healthz``, ``/readyz`` and ``/metrics`` at its root, whatever the
    issuer's path. Served beside :func:`create_app` (``main.serve``), never on the public port."""
    probes = health.Probes(provider)
    return Starlette(
        routes=[
            Route("/healthz", probes.healthz, methods=["GET"]),
            Route("/readyz", probes.readyz, methods=["GET"]),
            Route("/metrics", probes.metrics, methods=["GET"]),
        ]
    )


def create_app(provider: Provider, *, background: tuple[Background, ...] = ()) -> ASGIApp:
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        for task in background:
            task.start()
        provider.backchannel.start()
        provider.assertions.remote_keys.start()
        try:
            yield {"provider": provider}
        finally:
            for task in reversed(background):
                task.stop()
            await provider.assertions.remote_keys.stop()
            await provider.backchannel.close()
            provider.workers.shutdown(wait=True)
            await provider.state.storage.close()

    prefix = provider.settings.issuer_path
    app_routes: list[BaseRoute] = [Mount(prefix, routes=routes())] if prefix else routes()
    app = Starlette(
        routes=app_routes,
        middleware=[cors_middleware()],
        exception_handlers=dict(EXCEPTION_HANDLERS),
        lifespan=lifespan,
    )
    lanes: ASGIApp = PublishedDocuments(app, provider)
    for lane in (TokenLane, IntrospectionLane, UserinfoLane):
        lanes = lane(lanes, provider)
    limited = BodyLimits(lanes, read_timeout=provider.settings.body_read_timeout)
    return ForwardedHeaders(limited, TrustedProxies(provider.settings.forwarded_allow_ips))


async def _stylesheet(request: Request) -> Response:
    return Response(_STYLESHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})
