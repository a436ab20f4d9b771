"""Running the provider against a cluster: the parts from the settings, served by uvicorn."""

from __future__ import annotations

import functools
import logging
import socket
import ssl

import uvicorn
from starlette.types import ASGIApp

import kubeoidc_contract as contract
from kubeoidc_provider.app import Background, build_provider, create_app, create_health_app
from kubeoidc_provider.cluster_issuer import ClusterIssuer
from kubeoidc_provider.identity.catalog import SourceCatalog
from kubeoidc_provider.identity.feed import SourceFeed
from kubeoidc_provider.issuer_discovery import fetch_issuer
from kubeoidc_provider.keys import KeySet, KeySetError
from kubeoidc_provider.kube_api import KubeApi
from kubeoidc_provider.listeners import ByListener, listen
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.service_accounts import ServiceAccountDirectory
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.signing import SecretFollower, keys_from_secret
from kubeoidc_provider.storage import Storage, open_storage
from kubeoidc_provider.streams import FollowedSecret
from kubeoidc_provider.tls import TLSFiles
from kubeoidc_provider.users import StaticUserDirectory, UserDirectoryError
from kubeoidc_provider.watcher import RegistryWatcher, default_api, read_secret
from kubeoidc_provider.workers import serve_forked

logger = logging.getLogger(__name__)


class ConfigurationError(Exception):
    """The provider cannot start with these settings; the message says what to change."""


def run(settings: ProviderSettings, *, log_level: str = "INFO") -> None:
    """Serve until stopped: in this process, or in ``settings.workers`` forked ones sharing the port."""
    if settings.workers == 1:
        _run_one(settings, log_level, None)
        return
    if settings.storage_url.startswith("memory:"):
        raise ConfigurationError(
            f"--workers {settings.workers} needs a state store the workers share: "
            "set the storage URL to sqlite:///PATH or redis://..., not memory://"
        )
    # Both ports bound here, before the fork: every worker serves the public and the health port.
    sockets = bind(settings, health=True)
    status = serve_forked(
        settings.workers, sockets, lambda inherited: _run_one(settings, log_level, inherited)
    )
    if status:
        raise SystemExit(status)


def _run_one(settings: ProviderSettings, log_level: str, sockets: list[socket.socket] | None) -> None:
    try:
        api = default_api()
        keys = _initial_keys(settings, api)
        users = StaticUserDirectory.from_file(settings.users_file) if settings.users_file else None
        storage = open_state_storage(settings)
    except (KeySetError, UserDirectoryError, ValueError, OSError) as error:
        raise ConfigurationError(str(error)) from error
    if users is None:
        logger.warning("no user directory (KUBEOIDC_PROVIDER_USERS_FILE): nobody can sign in")
        users = StaticUserDirectory([])
    registry = ClientRegistry()
    service_accounts = ServiceAccountDirectory()
    catalog = SourceCatalog(settings.issuer + contract.UPSTREAM_CALLBACK_PATH)
    cluster = ClusterIssuer(
        functools.partial(fetch_issuer, api),
        issuer=settings.service_account_issuer,
        refresh_interval=settings.service_account_keys_refresh,
    )
    provider = build_provider(
        settings,
        registry=registry,
        users=users,
        keys=keys,
        storage=storage,
        cluster_issuer=cluster,
        service_accounts=service_accounts,
        sources=catalog,
    )
    feed = SourceFeed(catalog, settings.identity_namespace) if settings.identity_namespace else None
    follow = None
    if settings.signing_keys_ref:
        namespace, name = settings.signing_keys_ref
        follow = FollowedSecret(namespace, name, SecretFollower(provider.signing))
    watcher = RegistryWatcher(
        registry,
        settings.namespaces or None,
        api,
        follow=follow,
        service_accounts=service_accounts,
        health=provider.feed,
        sources=feed,
    )
    app = create_app(
        provider,
        background=(Background(watcher.start, watcher.stop), Background(cluster.start, cluster.stop)),
    )
    serve(app, settings, health_app=create_health_app(provider), log_level=log_level, sockets=sockets)


def open_state_storage(settings: ProviderSettings) -> Storage:
    """The state store ``storage_url`` names, with ``redis_password`` when one is set."""
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    return open_storage(settings.storage_url, redis_password=password)


def _initial_keys(settings: ProviderSettings, api: KubeApi) -> KeySet:
    """The signing keys to start with: from the file, or read once from the operator's Secret."""
    if settings.signing_keys_file and settings.signing_keys_secret:
        raise ConfigurationError("set KUBEOIDC_PROVIDER_SIGNING_KEYS_FILE or _SIGNING_KEYS_SECRET, not both")
    if settings.signing_keys_file:
        return KeySet.load(settings.signing_keys_file)
    if settings.signing_keys_ref:
        namespace, name = settings.signing_keys_ref
        secret = read_secret(api, namespace, name)
        if secret is None:
            raise ConfigurationError(
                f"the signing keys Secret {namespace}/{name} does not exist (yet): the operator creates it "
                "when KUBEOIDC_OPERATOR_SIGNING_KEYS_SECRET names it"
            )
        return keys_from_secret(secret)
    raise ConfigurationError(
        "no signing keys: set KUBEOIDC_PROVIDER_SIGNING_KEYS_SECRET to the Secret the operator manages, or "
        "KUBEOIDC_PROVIDER_SIGNING_KEYS_FILE to a private JWKS (create one with `kubeoidc keys generate`); "
        "or use `kubeoidc dev` to try the provider"
    )


def serve(
    app: ASGIApp,
    settings: ProviderSettings,
    *,
    health_app: ASGIApp | None = None,
    log_level: str = "INFO",
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve ``app`` on ``host``:``port`` and, when given, ``health_app`` on ``host``:``health_port``;
    on ``sockets`` when a worker inherited them bound (see :func:`bind`), else bound here."""
    tls = tls_files(settings)
    if tls is not None:
        tls.start()
    bound: list[socket.socket] = []
    try:
        server, bound = listening_server(
            app, settings, health_app=health_app, tls=tls, log_level=log_level, sockets=sockets
        )
        server.run(sockets=bound)
    finally:
        for sock in bound:
            sock.close()
        if tls is not None:
            tls.stop()


def bind(settings: ProviderSettings, *, health: bool) -> list[socket.socket]:
    """The public port's socket and, with ``health``, the health port's: bound here, so a port in use
    stops the start."""
    ports = [settings.port] + ([settings.health_port] if health else [])
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sockets.append(listen(settings.host, port))
    except OSError as error:
        for sock in sockets:
            sock.close()
        raise ConfigurationError(f"cannot listen on {settings.host}:{port}: {error}") from error
    return sockets


def listening_server(
    app: ASGIApp,
    settings: ProviderSettings,
    *,
    health_app: ASGIApp | None = None,
    tls: TLSFiles | None = None,
    log_level: str = "INFO",
    sockets: list[socket.socket] | None = None,
) -> tuple[uvicorn.Server, list[socket.socket]]:
    """The server and the sockets it is to run on (``server.run(sockets=...)``): the public port, and
    the health port for ``health_app``; bound here (:func:`bind`) unless ``sockets`` are given (a
    worker's, bound by the parent before the fork)."""
    if sockets is None:
        sockets = bind(settings, health=health_app is not None)
    if health_app is not None:
        app = ByListener(app, {sockets[1].getsockname()[1]: health_app})
    return uvicorn_server(app, settings, tls=tls, log_level=log_level), sockets


def tls_files(settings: ProviderSettings) -> TLSFiles | None:
    """The certificate to serve HTTPS with, when the settings name one."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    try:
        return TLSFiles(settings.tls_cert_file, settings.tls_key_file)
    except (OSError, ssl.SSLError) as error:
        raise ConfigurationError(f"cannot serve HTTPS with {settings.tls_cert_file}: {error}") from error


def uvicorn_server(
    app: ASGIApp, settings: ProviderSettings, *, tls: TLSFiles | None = None, log_level: str = "INFO"
) -> uvicorn.Server:
    # No access log: request lines carry interaction ids and client parameters that need not be kept.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        # The provider serves no WebSocket: without this, uvicorn loads the websockets package (about
        # 0.7 MiB of memory) and hands it every Upgrade request.
        ws="none",
        access_log=False,
        # The app reads the forwarded headers itself (kubeoidc_provider.forwarded), counting the right hop.
        proxy_headers=False,
        server_header=False,
        log_level=log_level.lower(),  # uvicorn's own loggers, which it configures apart from the root
        ssl_certfile=tls.cert_file if tls is not None else None,
        ssl_keyfile=tls.key_file if tls is not None else None,
    )
    config.load()
    if tls is not None:
        # Our context, not uvicorn's (which reads the files once): it follows renewed certificates.
        config.ssl = tls.context
    return uvicorn.Server(config)
