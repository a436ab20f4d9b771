"""In-process storage: a dict under a lock, for tests and single-process trials.

Nothing here waits (the lock is held for a few dictionary operations), so the coroutines run straight
through on the event loop.

Values are kept as JSON text, so what comes back is what SQLite and Redis would give (a fresh dict,
tuples turned into lists) and a value JSON cannot carry is refused on write, as there. Expired
entries are dropped when read, and swept from the whole dict every ``sweep_interval`` seconds, so a
long-running process does not grow forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from . import Consumed, check_kind, check_ttl, dump_value, load_value

__all__ = ["MemoryStorage"]


@dataclass
class _Entry:
    text: str
    expires_at: float
    uses: int = 0


@dataclass
class _Counter:
    count: int
    expires_at: float


class MemoryStorage:
    """:class:`~kubeoidc_provider.storage.Storage` in a dict; ``clock`` is injectable for tests."""

    def __init__(self, *, clock: Callable[[], float] = time.time, sweep_interval: float = 60.0) -> None:
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._next_sweep = clock() + sweep_interval

    def __len__(self) -> int:
        """How many entries and counters are held, expired or not (for tests of the sweep)."""
        with self._lock:
            return len(self._entries) + len(self._counters)

    async def put(self, kind: str, key: str, value: Mapping[str, Any], ttl: int) -> None:
        check_kind(kind)
        text = dump_value(value)
        check_ttl(ttl)
        with self._lock:
            now = self._clock()
            self._sweep(now)
            self._entries[kind, key] = _Entry(text, now + ttl)

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        check_kind(kind)
        with self._lock:
            entry = self._live_entry(kind, key, self._clock())
            text = entry.text if entry is not None else None
        return load_value(text) if text is not None else None

    async def delete(self, kind: str, key: str) -> None:
        check_kind(kind)
        with self._lock:
            self._entries.pop((kind, key), None)
            self._counters.pop((kind, key), None)

    async def consume(self, kind: str, key: str) -> Consumed | None:
        check_kind(kind)
        with self._lock:
            entry = self._live_entry(kind, key, self._clock())
            if entry is None:
                return None
            entry.uses += 1
            text, first = entry.text, entry.uses == 1
        return Consumed(load_value(text), first=first)

    async def incr(self, kind: str, key: str, ttl: int) -> int:
        check_kind(kind)
        check_ttl(ttl)
        with self._lock:
            now = self._clock()
            self._sweep(now)
            counter = self._counters.get((kind, key))
            if counter is None or counter.expires_at <= now:
                counter = self._counters[kind, key] = _Counter(0, now + ttl)
            counter.count += 1
            return counter.count

    async def uncount(self, kind: str, key: str) -> None:
        check_kind(kind)
        with self._lock:
            counter = self._counters.get((kind, key))
            if counter is not None and counter.expires_at > self._clock() and counter.count > 0:
                counter.count -= 1

    async def close(self) -> None:
        with self._lock:
            self._entries.clear()
            self._counters.clear()

    def _live_entry(self, kind: str, key: str, now: float) -> _Entry | None:
        entry = self._entries.get((kind, key))
        if entry is not None and entry.expires_at <= now:
            del self._entries[kind, key]
            return None
        return entry

    def _sweep(self, now: float) -> None:
        """Drop every expired entry and counter, at most once per sweep interval (lock held)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + self._sweep_interval
        for entries in (self._entries, self._counters):
            expired = [k for k, v in entries.items() if v.expires_at <= now]
            for k in expired:
                del entries[k]
