"""The cluster's ServiceAccount token issuer, as the provider knows it: its ``iss`` and its keys, in memory.

Learned in the background, never on the request path: a thread fetches the API server's issuer
discovery (``/.well-known/openid-configuration``, for ``issuer``) and its key set (``/openid/v1/jwks``)
at start, then every ``refresh_interval`` seconds. A request whose token names a key not known yet (the
cluster rotated its signing key) asks for an early fetch and waits for it at most ``wait`` seconds; such
early fetches happen at most once per ``min_interval`` seconds, so tokens with made-up key IDs cannot
make the provider hammer the API server. A failed fetch keeps the keys already known.

The issuer can be set instead of learned, for clusters whose ServiceAccount issuer is an external URL
that the API server's discovery does not state (the keys still come from the API server).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Discovered:
    """What one fetch learned: the issuer the API server states and its public key set (a JWKS)."""

    issuer: str | None
    jwks: Mapping[str, Any]


#: Fetches the issuer discovery and key set from the API server (blocking; run on the fetcher thread).
Fetch = Callable[[], Discovered]


class ClusterIssuer:
    """A :class:`~kubeoidc_provider.assertions.KeySource` for the cluster's ServiceAccount tokens."""

    def __init__(
        self,
        fetch: Fetch | None,
        *,
        issuer: str | None = None,
        refresh_interval: float = 300.0,
        min_interval: float = 10.0,
        wait: float = 3.0,
    ) -> None:
        """``fetch`` None: nothing to learn from (no cluster), every ServiceAccount token is refused."""
        self._fetch = fetch
        self._configured_issuer = issuer
        self._refresh_interval = refresh_interval
        self._min_interval = min_interval
        self._wait = wait
        # (issuer, kid → key), swapped as one reference: a request sees one version or the next.
        self._current: tuple[str | None, dict[str | None, Key]] = (None, {})
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._fetching = False
        self._last_early = float("-inf")  # when a request last asked for an early fetch
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[bool]]] = []

    # -- the request path -------------------------------------------------------------------------

    @property
    def issuer(self) -> str | None:
        return self._configured_issuer or self._current[0]

    def key(self, kid: str | None) -> Key | None:
        keys = self._current[1]
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        return keys.get(kid)

    @property
    def kids(self) -> list[str]:
        return sorted(kid for kid in self._current[1] if kid is not None)

    async def refresh(self) -> bool:
        if self._fetch is None or self._thread is None:
            return False
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._lock:
            if not self._fetching:
                now = time.monotonic()
                if now - self._last_early < self._min_interval:
                    return False
                self._last_early = now
                self._wake.set()
            self._waiters.append((loop, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._wait)
        except TimeoutError:
            return False

    # -- the background ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._fetch is None:
            logger.info("no Kubernetes API: ServiceAccount tokens cannot authenticate clients here")
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="kubeoidc-sa-issuer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.fetch_now()
            self._wake.wait(self._refresh_interval)
            self._wake.clear()

    def fetch_now(self) -> bool:
        """Fetch once (on the calling thread), install what was learned, wake the requests waiting."""
        assert self._fetch is not None
        with self._lock:
            self._fetching = True
        ok = False
        try:
            self.install(self._fetch())
            ok = True
        except Exception as error:
            logger.warning(
                "could not learn the cluster's ServiceAccount issuer and keys (%s: %s); keeping %s",
                type(error).__name__,
                error,
                ", ".join(self.kids) or "none",
            )
        finally:
            with self._lock:
                self._fetching = False
                waiters, self._waiters = self._waiters, []
            for loop, future in waiters:
                loop.call_soon_threadsafe(_resolve, future, ok)
        return ok

    def install(self, discovered: Discovered) -> None:
        """Use this issuer and key set from now on (keys that cannot be read are left out)."""
        keys: dict[str | None, Key] = {}
        for jwk in discovered.jwks.get("keys") or ():
            if not isinstance(jwk, Mapping) or jwk.get("use", "sig") != "sig":
                continue
            try:
                key = JWKRegistry.import_key(dict(jwk))
            except (JoseError, ValueError, TypeError) as error:
                logger.warning("ignoring a ServiceAccount issuer key that cannot be read: %s", error)
                continue
            if key.is_private:
                continue  # a public key set never holds one; never trust what it would mean
            keys[jwk.get("kid") if isinstance(jwk.get("kid"), str) else None] = key
        previous = self._current
        self._current = (discovered.issuer, keys)
        if previous[0] != discovered.issuer or set(previous[1]) != set(keys):
            logger.info(
                "ServiceAccount issuer %s with keys %s",
                self.issuer,
                ", ".join(self.kids) or "none",
            )


def _resolve(future: asyncio.Future[bool], ok: bool) -> None:
    if not future.done():
        future.set_result(ok)
