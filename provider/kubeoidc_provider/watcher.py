"""Feeds the client registry from the Kubernetes API: list, then watch, OIDCClients.

This module and the issuer discovery are the provider's only users of its Kubernetes client
(:mod:`.kube_api`, a small one of our own: the ``kubernetes`` package would cost the provider's memory
more than its whole client registry). Each kind (and each namespace, when the provider is limited to
some) runs in its own daemon thread: list (paged, keeping of each object only what the stream keeps:
the registry's small record of an OIDCClient, made as its page comes), hand the result to the registry,
then watch from the list's resourceVersion and feed every event.
A watch that ends (its server-side timeout, a quiet connection's read timeout) or loses its connection
resumes from the last resourceVersion seen; a 410 Gone re-lists at once, and an error answer of the API
re-lists too. Failed attempts wait by one policy for list and watch (:mod:`.backoff`: jittered, capped
at about a second), so the registry is in step again within seconds of the API server's return; the
client makes no retries of its own underneath, and connects with a short timeout. Watches ask for
bookmarks, so a quiet stream still learns recent resourceVersions and resumes without a re-list. Each
stream reports its connection to a :class:`~.feed.FeedHealth`, which ``/readyz`` and
``/metrics`` read.

The registry becomes ready once the first list of every stream has completed. The provider needs
only ``get``, ``list`` and ``watch`` on ``oidcclients`` and, for clients that ServiceAccount tokens
authenticate, on ``serviceaccounts`` (their uids: see ``service_accounts``). It reads no tenant's Secret:
the operator publishes each client's credential digests in the OIDCClient's status (see the registry).

With a :class:`SourceFeed`, two more streams follow the IdentitySources of the provider's namespace
and that namespace's Secrets (which they name), for the identity sources.

When the operator manages the signing keys, one more stream follows that one Secret (by name) and
hands every version of it to the provider, which starts signing with it without a restart.

Nothing here logs the content of a Secret.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from kubeoidc_contract.cluster_access import ClusterAccess, NoClusterError, from_environment
from kubeoidc_provider.backoff import CAP, INITIAL, Backoff
from kubeoidc_provider.feed import FeedHealth
from kubeoidc_provider.identity.feed import SourceFeed
from kubeoidc_provider.kube_api import ApiError, KubeApi
from kubeoidc_provider.registration import KubeObject
from kubeoidc_provider.registry import ClientRegistry
from kubeoidc_provider.service_accounts import ServiceAccountDirectory
from kubeoidc_provider.streams import (
    FollowedSecret,
    Stream,
    followed_secret_stream,
    oidcclient_stream,
    service_account_stream,
    source_streams,
)

__all__ = ["NoClusterError", "RegistryWatcher", "default_api", "read_secret"]

logger = logging.getLogger(__name__)

_GONE = 410


class RegistryWatcher:
    """Keeps a ``ClientRegistry`` in step with the cluster, from background threads."""

    def __init__(
        self,
        registry: ClientRegistry,
        namespaces: list[str] | None,
        api: KubeApi | None = None,
        *,
        watch_timeout: int = 300,
        page_size: int = 500,
        backoff_initial: float = INITIAL,
        backoff_max: float = CAP,
        follow: FollowedSecret | None = None,
        sources: SourceFeed | None = None,
        service_accounts: ServiceAccountDirectory | None = None,
        health: FeedHealth | None = None,
    ) -> None:
        """``namespaces`` None or empty watches the whole cluster; ``api`` defaults to the in-cluster
        configuration, else the kubeconfig. ``health`` receives each stream's connection state."""
        self._registry = registry
        self._namespaces: list[str | None] = list(namespaces) if namespaces else [None]
        self._api = api
        self._watch_timeout = watch_timeout
        self._page_size = page_size
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._follow = follow
        self._sources = sources
        self._service_accounts = service_accounts
        self.health = health if health is not None else FeedHealth()
        self._stopping = threading.Event()
        self._streams: list[Stream] = []
        self._ready_lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the list-then-watch threads; returns at once (see ``ClientRegistry.ready``)."""
        if self._streams:
            raise RuntimeError("RegistryWatcher already started")
        if self._api is None:
            self._api = default_api()
        self._stopping.clear()
        registry = self._registry
        for namespace in self._namespaces:
            self._streams.append(oidcclient_stream(namespace, registry))
            if self._service_accounts is not None:
                self._streams.append(service_account_stream(namespace, self._service_accounts))
        if self._sources is not None:
            self._streams += source_streams(self._sources)
        if self._follow is not None:
            self._streams.append(followed_secret_stream(self._follow))
        for stream in self._streams:
            self.health.add(stream.label)
            stream.thread = threading.Thread(
                target=self._run,
                args=(stream,),
                name=f"kubeoidc-watch-{stream.kind}-{stream.namespace or 'all'}",
                daemon=True,
            )
            stream.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every thread: cut the open watches short and wait (up to ``timeout``) for the threads."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = [s for s in self._streams if s.thread is not None and s.thread.is_alive()]
            if not alive:
                break
            for stream in alive:
                # Repeated: a watch that was just opening when stop() came had no socket to cut yet.
                with stream.lock:
                    if stream.watch is not None:
                        stream.watch.stop()
            thread = alive[0].thread
            if thread is not None:
                thread.join(0.1)
        still = [s.label for s in self._streams if s.thread is not None and s.thread.is_alive()]
        if still:
            logger.warning("Watch threads still running after stop: %s", ", ".join(still))
        self._streams = []

    # -- one stream -------------------------------------------------------------------------------

    def _run(self, stream: Stream) -> None:
        backoff = Backoff(self._backoff_initial, self._backoff_max)
        resource_version: str | None = None
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list(stream)
                    backoff.reset()
                resource_version, progressed = self._watch(stream, resource_version)
                if progressed:
                    backoff.reset()
                continue
            except ApiError as exc:
                if self._stopping.is_set():
                    break
                # The resourceVersion is of no more use: expired (410), or the API refused the request.
                resource_version = None
                if exc.status == _GONE:
                    self.health.relisted(stream.label)
                    logger.info("Watch of %s expired (410 Gone); listing again", stream.label)
                    continue
                self.health.failed(stream.label)
                delay = backoff.next_delay()
                self._log_failure(stream, f"{exc.status} {exc.reason}", backoff.failures, delay)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                # The connection failed: the next attempt resumes from the resourceVersion it had.
                self.health.failed(stream.label)
                delay = backoff.next_delay()
                self._log_failure(stream, f"{type(exc).__name__}: {exc}", backoff.failures, delay)
            self._stopping.wait(delay)
        logger.debug("Stopped watching %s", stream.label)

    @staticmethod
    def _log_failure(stream: Stream, why: str, failures: int, delay: float) -> None:
        # One warning when a stream loses the API; the retries while it stays away are debug lines.
        log = logger.warning if failures == 1 else logger.debug
        log("Listing or watching %s failed (%s); retrying in %.2fs", stream.label, why, delay)

    def _connected(self, stream: Stream) -> None:
        if self.health.disconnected().get(stream.label) is not None and stream.listed:
            logger.info("Watching %s again", stream.label)
        self.health.connected(stream.label)

    def _list(self, stream: Stream) -> str | None:
        """List every object (page by page), replace the registry's view, return the resourceVersion."""
        assert self._api is not None
        items: list[Any] = []  # as stream.keep returns them
        page_token: str | None = None
        while True:
            params: dict[str, str | int] = {**stream.params, "limit": self._page_size}
            if page_token:
                params["continue"] = page_token
            document = self._api.get_json(stream.path, params)
            listed = [obj for obj in document.get("items") or () if stream.accepts(obj)]
            items.extend(map(stream.keep, listed) if stream.keep is not None else listed)
            metadata = document.get("metadata") or {}
            del document, listed  # this page's objects go before the next page comes
            page_token = metadata.get("continue")
            if not page_token:
                break
        stream.replace(items)
        self._connected(stream)
        logger.info("Listed %d %s objects", len(items), stream.label)
        self._mark_listed(stream)
        version = metadata.get("resourceVersion")
        return version if isinstance(version, str) and version else None

    def _watch(self, stream: Stream, resource_version: str | None) -> tuple[str | None, bool]:
        """Feed one watch request's events; return the last resourceVersion seen, and whether the watch
        got anywhere (an event, or an end the server or a quiet connection chose).

        Raises ApiError (410 included) or any transport error otherwise.
        """
        assert self._api is not None
        params: dict[str, str | int] = {
            **stream.params,
            "timeoutSeconds": self._watch_timeout,
            "allowWatchBookmarks": "true",
        }
        if resource_version:
            params["resourceVersion"] = resource_version
        opened = False

        def accepted() -> None:
            nonlocal opened
            opened = True
            self._connected(stream)

        # Read timeout a little past the server's: a server that ignores timeoutSeconds still cannot
        # keep this thread forever (and TCP keep-alives find a dead peer sooner).
        watch = self._api.watch(stream.path, params, read_timeout=self._watch_timeout + 15, opened=accepted)
        with stream.lock:
            if self._stopping.is_set():
                return resource_version, False
            stream.watch = watch
        progressed = False
        try:
            for event in watch:
                resource_version = self._apply(stream, event) or resource_version
                progressed = True
                if self._stopping.is_set():
                    break
            progressed = True
        except TimeoutError:
            if not opened:
                # No connection, or no answer to the request: the API server is out of reach, which is
                # a failure (backoff, and the feed's health), not a quiet watch.
                raise
            # kube_api's read timeout on an accepted watch: no event, no bookmark, no end for that long.
            logger.debug("Watch of %s was quiet until the read timeout; resuming", stream.label)
            progressed = True
        finally:
            with stream.lock:
                stream.watch = None
        return resource_version, progressed

    def _apply(self, stream: Stream, event: Mapping[str, Any]) -> str | None:
        """Feed one event to the registry; return its resourceVersion."""
        kind = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, Mapping):
            return None
        metadata = obj.get("metadata") or {}
        version = metadata.get("resourceVersion")
        if kind in ("ADDED", "MODIFIED"):
            if stream.accepts(obj):
                stream.upsert(obj)
            else:
                stream.delete(obj)  # e.g. a Secret whose manager label was removed
        elif kind == "DELETED":
            stream.delete(obj)
        elif kind != "BOOKMARK":
            return None
        logger.debug("%s %s %s/%s", kind, stream.kind, metadata.get("namespace"), metadata.get("name"))
        return version if isinstance(version, str) and version else None

    def _mark_listed(self, stream: Stream) -> None:
        with self._ready_lock:
            if stream.listed:
                return
            stream.listed = True
            if all(s.listed for s in self._streams) and not self._registry.ready:
                self._registry.mark_ready()
                logger.info("Client registry ready: %d clients served", len(self._registry))


def read_secret(api: KubeApi, namespace: str, name: str) -> KubeObject | None:
    """One Secret, read once (the signing keys at start), or None if there is none."""
    try:
        return api.get_json(f"/api/v1/namespaces/{namespace}/secrets/{name}")
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def default_api(access: ClusterAccess | None = None) -> KubeApi:
    """A client of the API server from the in-cluster ServiceAccount, else from the kubeconfig
    (:class:`NoClusterError` when neither is there)."""
    if access is None:
        try:
            access = from_environment()
        except NoClusterError as error:
            raise NoClusterError(
                f"{error}; to try the provider without a cluster, use `kubeoidc dev`"
            ) from None
    return KubeApi(access)
