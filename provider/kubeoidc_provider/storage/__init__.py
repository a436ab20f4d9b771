"""The provider's state store: one small asynchronous key-value interface, three implementations.

Sessions, authorization codes, refresh tokens, consents and rate-limit counters all live behind
:class:`Storage`. Every entry has a kind (a namespace such as ``"code"``), a key, a JSON object as its
value and a time to live in seconds; nothing is kept forever. Keys are already hashes of tokens (the
caller hashes them): storage never sees a raw token, code or secret.

Semantics every implementation honours (one contract test suite runs against all of them):

- ``put`` writes or replaces an entry, with a fresh TTL and a fresh consumption state.
- ``get`` returns a copy of the value, whether or not the entry has been consumed; ``None`` once
  the TTL has ended.
- ``consume`` is atomic single use, across threads and (SQLite, Redis) across processes: the first
  call returns ``Consumed(value, first=True)``; every later call, until the TTL ends, returns
  ``Consumed(value, first=False)``, so a replay is detectable and the caller can revoke what the
  first use issued. It is never a read followed by a delete.
- ``incr`` counts in a fixed window that starts at the first ``incr`` of a key and lasts ``ttl``
  seconds; it returns the new count. Counters live apart from entries (an ``incr`` never touches
  the entry of the same kind and key, nor ``put`` the counter).
- ``uncount`` takes one back from a live counter, atomically, keeping its window; a counter that is
  absent, expired or at zero is left as it is (so it never starts a window nor goes below zero).
- ``delete`` removes the entry and the counter of that kind and key (so it also resets a counter).
- ``kind`` is a short non-empty name without ``:`` (``"code"``, ``"session"``); ``key`` any string.
- ``ttl`` is a whole number of seconds, at least 1.
- Every method is a coroutine and none blocks the event loop: the requests of every browser and client
  share one loop, so a store that waited on it (a Redis round trip, an SQLite write behind a lock)
  would stall them all. Memory never waits, SQLite runs on a thread of its own, Redis is one
  pipelined asyncio connection.

Implementations, chosen by :func:`open_storage` from a URL:

- ``memory://`` — a dict in this process (tests, single-process trials).
- ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``, ``sqlite:///:memory:`` — one file,
  the embedded default (:mod:`.sqlite`).
- ``redis://``, ``rediss://`` (TLS), ``redis+sentinel://``, ``rediss+sentinel://`` — Redis, for
  several provider replicas (:mod:`.redis`, which documents the URL forms).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Consumed", "Storage", "open_storage"]


@dataclass(frozen=True)
class Consumed:
    """What :meth:`Storage.consume` found: the stored value, and whether this was its first use."""

    value: dict[str, Any]
    first: bool


@runtime_checkable
class Storage(Protocol):
    """The provider's state store. See the module docstring for the semantics."""

    async def put(self, kind: str, key: str, value: Mapping[str, Any], ttl: int) -> None:
        """Write (or replace) an entry that lives ``ttl`` seconds, not yet consumed."""

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        """The entry's value, or ``None`` when absent or expired."""

    async def uncount(self, kind: str, key: str) -> None:
        """Take one back from a live, positive counter (its window unchanged); else do nothing."""

    async def delete(self, kind: str, key: str) -> None:
        """Remove the entry and the counter of this kind and key; removing nothing is not an error."""

    async def consume(self, kind: str, key: str) -> Consumed | None:
        """Mark the entry used, atomically; ``first`` tells whether this call was the first use."""

    async def incr(self, kind: str, key: str, ttl: int) -> int:
        """Add one to a counter whose window of ``ttl`` seconds starts at its first ``incr``."""

    async def close(self) -> None:
        """Release connections and files."""


def check_kind(kind: str) -> str:
    """Refuse a kind that lets two (kind, key) pairs share one key (``a:b`` + ``c``, ``a`` + ``b:c``)."""
    if not kind or ":" in kind:
        raise ValueError(f"storage kind must be a non-empty name without ':', not {kind!r}")
    return kind


def check_ttl(ttl: int) -> int:
    """Refuse a TTL that is not a whole number of seconds, at least 1 (an entry lives a bounded time)."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1:
        raise ValueError(f"ttl must be a whole number of seconds, at least 1, not {ttl!r}")
    return ttl


def dump_value(value: Mapping[str, Any]) -> str:
    """Serialise a value as compact JSON; a value that JSON cannot carry is refused here, on write."""
    if not isinstance(value, Mapping):
        raise TypeError(f"a stored value must be a mapping, not {type(value).__name__}")
    return json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def load_value(text: str | bytes) -> dict[str, Any]:
    """Read a value back from its JSON text: always a fresh dict the caller may change."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise TypeError(f"stored value is not a JSON object: {type(value).__name__}")
    return value


def open_storage(url: str, *, redis_password: str | None = None) -> Storage:
    """Open the storage a URL names, by its scheme (see the module docstring for the forms).

    ``redis_password``: Redis's password when the URL carries none, so that it can come from a Secret
    on its own (an environment variable) instead of inside a URL."""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(f"storage URL must look like scheme://..., got {redact_url(url)!r}")
    if scheme == "memory":
        from .memory import MemoryStorage

        return MemoryStorage()
    if scheme == "sqlite":
        from .sqlite import SQLiteStorage

        return SQLiteStorage.from_url(url)
    if scheme in ("redis", "rediss", "redis+sentinel", "rediss+sentinel"):
        from .redis import RedisStorage

        return RedisStorage.from_url(url, password=redis_password)
    raise ValueError(
        f"unknown storage URL scheme {scheme!r}: use memory://, sqlite:///path.db, redis://, rediss://, "
        "redis+sentinel:// or rediss+sentinel://"
    )


def redact_url(url: str) -> str:
    """The URL without its credentials (user info, ``*password*`` query values), fit for a message."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    rest, question, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    options = [
        f"{name}=***" if "password" in name.lower() else f"{name}{eq}{value}"
        for name, eq, value in (part.partition("=") for part in query.split("&"))
    ]
    return f"{scheme}{sep}{netloc}{slash}{path}{question}{'&'.join(options) if query else ''}"
