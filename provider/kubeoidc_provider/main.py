"""Running the provider against a cluster: the parts from the settings, served by uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from kubeoidc_provider.app import Background, build_provider, create_app
from kubeoidc_provider.keys import KeySet, KeySetError
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.settings import ProviderSettings
from kubeoidc_provider.storage import open_storage
from kubeoidc_provider.users import StaticUserDirectory, UserDirectoryError
from kubeoidc_provider.watcher import RegistryWatcher

logger = logging.getLogger(__name__)


class ConfigurationError(Exception):
    """The provider cannot start with these settings; the message says what to change."""


def run(settings: ProviderSettings) -> None:
    if settings.signing_keys_file is None:
        raise ConfigurationError(
            "no signing keys: set KUBEOIDC_PROVIDER_SIGNING_KEYS_FILE to a private JWKS "
            "(create one with `kubeoidc keys generate`), or use `kubeoidc dev` to try the provider"
        )
    try:
        keys = KeySet.load(settings.signing_keys_file)
        users = StaticUserDirectory.from_file(settings.users_file) if settings.users_file else None
        storage = open_storage(settings.storage_url)
    except (KeySetError, UserDirectoryError, ValueError, OSError) as error:
        raise ConfigurationError(str(error)) from error
    if users is None:
        logger.warning("no user directory (KUBEOIDC_PROVIDER_USERS_FILE): nobody can sign in")
        users = StaticUserDirectory([])
    registry = ClientRegistry()
    watcher = RegistryWatcher(registry, settings.namespaces or None)
    provider = build_provider(settings, registry=registry, users=users, keys=keys, storage=storage)
    app = create_app(provider, background=(Background(watcher.start, watcher.stop),))
    serve(app, settings)


def serve(app: object, settings: ProviderSettings) -> None:
    # No access log: request lines carry interaction ids and client parameters that need not be kept.
    uvicorn.run(
        app,  # type: ignore[arg-type]
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
    )
