"""The public keys ``private_key_jwt`` clients publish at ``spec.jwksURI``, fetched in the background.

One asyncio task per provider process keeps, for each URI some served client names, the keys it last
fetched. A request reads them from memory (:meth:`RemoteKeySets.keys`) and never fetches: the task does,

- when it first sees a client naming the URI (it looks at the registry every ``scan_interval``, a
  second: a snapshot of the served clients, cheap even for thousands);
- again when the last response's ``Cache-Control: max-age`` has run out, kept between ``min_max_age``
  and ``max_max_age`` (without one: ``default_max_age``), so a publisher can neither make the provider
  fetch in a loop nor keep a key valid forever;
- early, when an assertion names a key ID not known yet (the client rotated its keys):
  :meth:`RemoteKeySets.refresh` starts the fetch, waits for it at most ``wait`` seconds, and is
  honoured at most once per ``min_interval`` per URI, so assertions with made-up key IDs cannot make
  the provider hammer the client's server.

A fetch is bounded: TLS verified (the system's CAs, plus a bundle of one's own), ``fetch_timeout``
seconds in all, ``MAX_DOCUMENT`` bytes, no redirect, a 200 with a public key set or nothing. A failed
fetch keeps the keys of the last good one, and is retried after ``retry_interval``. A URI no served
client names any more is forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from kubeoidc_provider.client_keys import Keys, public_keys
from kubeoidc_provider.registry import ClientRegistry

if TYPE_CHECKING:
    import httpx2

logger = logging.getLogger(__name__)

#: The most bytes a key set may have: a set of a few RSA keys is about 2 KiB.
MAX_DOCUMENT: Final = 64 * 1024
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)


@dataclass(slots=True)
class _KeySet:
    """What is known of one URI: its keys, when to fetch again, and the fetch in flight."""

    keys: Keys = field(default_factory=dict)
    due: float = 0.0  # monotonic time of the next scheduled fetch
    last_early: float = float("-inf")  # when a request last got an early fetch
    fetching: asyncio.Task[bool] | None = None


class RemoteKeySets:
    """URI → the public keys fetched from it; a :class:`~kubeoidc_provider.client_keys.RemoteKeys`."""

    def __init__(
        self,
        registry: ClientRegistry,
        *,
        ssl_context: ssl.SSLContext | None = None,
        fetch_timeout: float = 5.0,
        default_max_age: float = 300.0,
        min_max_age: float = 60.0,
        max_max_age: float = 86400.0,
        retry_interval: float = 30.0,
        min_interval: float = 10.0,
        wait: float = 3.0,
        scan_interval: float = 1.0,
    ) -> None:
        self._registry = registry
        self._ssl = ssl_context  # None: the system's CAs, loaded at the first fetch
        self._timeout = fetch_timeout
        self._default_max_age = default_max_age
        self._max_age_bounds = (min_max_age, max_max_age)
        self._retry_interval = retry_interval
        self._min_interval = min_interval
        self._wait = wait
        self._scan_interval = scan_interval
        self._sets: dict[str, _KeySet] = {}
        self._http: httpx2.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None  # made on the loop that runs the task

    # -- the request path -------------------------------------------------------------------------

    def keys(self, uri: str) -> Keys:
        known = self._sets.get(uri)
        if known is None:
            self._sets[uri] = _KeySet()
            self._wake_up()  # a client the scan has not seen yet: fetch now, in the background
            return {}
        return known.keys

    async def refresh(self, uri: str) -> bool:
        if self._task is None:
            return False
        known = self._sets.setdefault(uri, _KeySet())
        if known.fetching is None:
            now = time.monotonic()
            if now - known.last_early < self._min_interval:
                return False
            known.last_early = now
            self._start_fetch(uri, known)
        assert known.fetching is not None
        try:
            return await asyncio.wait_for(asyncio.shield(known.fetching), self._wait)
        except TimeoutError:
            return False

    # -- the background ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background task (on the running event loop)."""
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kubeoidc-client-jwks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        fetches = [s.fetching for s in self._sets.values() if s.fetching is not None]
        for task in fetches:
            task.cancel()
        await asyncio.gather(*fetches, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
        self._task = self._http = None

    def _wake_up(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._scan()
            now = time.monotonic()
            for uri, known in self._sets.items():
                if known.fetching is None and known.due <= now:
                    self._start_fetch(uri, known)
            upcoming = [s.due for s in self._sets.values() if s.fetching is None]
            pause = min([self._scan_interval, *(due - now for due in upcoming)])
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(pause, 0.05))

    def _scan(self) -> None:
        """Know the URIs the served clients name now, and only those."""
        named = {c.jwks_uri for c in self._registry.clients() if c.jwks_uri is not None and c.jwks is None}
        for uri in named - self._sets.keys():
            self._sets[uri] = _KeySet()
        for uri in self._sets.keys() - named:
            if self._sets[uri].fetching is None and self._registry.ready:
                del self._sets[uri]

    def _start_fetch(self, uri: str, known: _KeySet) -> None:
        known.fetching = asyncio.get_running_loop().create_task(self._fetch(uri, known))

    async def _fetch(self, uri: str, known: _KeySet) -> bool:
        """Fetch once; install the keys or keep the last good ones; say which."""
        try:
            keys, max_age = await self._get(uri)
        except Exception as error:  # whatever went wrong, the keys fetched before stay
            known.due = time.monotonic() + self._retry_interval
            logger.warning(
                "could not fetch the client keys at %s (%s: %s); keeping %d key(s) fetched before",
                _display(uri),
                type(error).__name__,
                error,
                len(known.keys),
            )
            return False
        finally:
            known.fetching = None
            self._wake_up()
        if set(keys) != set(known.keys):
            kids = ", ".join(sorted(str(kid) for kid in keys))
            logger.info("client keys at %s: %s", _display(uri), kids)
        known.keys = keys
        known.due = time.monotonic() + max_age
        return True

    async def _get(self, uri: str) -> tuple[Keys, float]:
        async with asyncio.timeout(self._timeout):  # the whole fetch, however slowly the bytes come
            body, cache_control = await self._download(uri)
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError("the key set is not JSON") from error
        return public_keys(document), cache_lifetime(
            cache_control, default=self._default_max_age, bounds=self._max_age_bounds
        )

    async def _download(self, uri: str) -> tuple[bytes, str]:
        """The body (at most ``MAX_DOCUMENT`` bytes, else an error) and the ``Cache-Control`` header."""
        headers = {"Accept": "application/jwk-set+json, application/json"}
        async with self._client().stream("GET", uri, headers=headers) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP status {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT:
                    raise ValueError(f"the key set is larger than {MAX_DOCUMENT} bytes")
            return bytes(body), response.headers.get("Cache-Control", "")

    def _client(self) -> httpx2.AsyncClient:
        """The HTTP client, made at the first fetch: a provider whose clients publish no key set never
        loads httpx2 nor the system's CAs (about 3 MiB)."""
        if self._http is None:
            # httpx2 (aiohttp would cost about 9 MiB more); its timeout bounds each read, the total is
            # bounded in _get.
            import httpx2

            self._http = httpx2.AsyncClient(
                verify=self._ssl or ssl.create_default_context(),
                timeout=self._timeout,
                follow_redirects=False,
                trust_env=False,
            )
        return self._http


def cache_lifetime(cache_control: str, *, default: float, bounds: tuple[float, float]) -> float:
    """How long to keep a response: its ``Cache-Control`` max-age (else ``default``), within ``bounds``."""
    found = _MAX_AGE.search(cache_control)
    max_age = float(found.group(1)) if found else default
    low, high = bounds
    return min(max(max_age, low), high)


def _display(uri: str) -> str:
    """The URI for a log line, without a query (which might carry a credential)."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
