"""How the registry's feed from the Kubernetes API is doing: which streams are cut off, since when.

The watcher reports each stream's connection (a list completed, a watch opened) and each failure;
``/readyz`` and ``/metrics`` read the result. A stream is *disconnected* from its first failure until
it is connected again: the registry may then miss changes (a rotated secret still accepted, a deleted
client still served), and ``disconnected_for`` says for how long at most. Thread-safe: the watcher's
threads write, the event loop reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class StreamFeed:
    """One stream's counts and state."""

    #: Failed list or watch requests.
    failures: int = 0
    #: Times the stream was connected again after losing its connection.
    reconnects: int = 0
    #: Re-lists forced by an expired resourceVersion (410 Gone).
    relists: int = 0
    #: When (monotonic) the stream lost its connection; None while connected.
    lost_at: float | None = None
    #: Whether the stream has ever been connected.
    connected_once: bool = False


@dataclass
class FeedHealth:
    """Every stream's :class:`StreamFeed`, by its label."""

    clock: Callable[[], float] = time.monotonic
    streams: dict[str, StreamFeed] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _stream(self, label: str) -> StreamFeed:
        return self.streams.setdefault(label, StreamFeed(lost_at=self.clock()))

    def add(self, label: str) -> None:
        """A stream that is about to connect for the first time (disconnected until it does)."""
        with self._lock:
            self._stream(label)

    def connected(self, label: str) -> None:
        with self._lock:
            stream = self._stream(label)
            if stream.lost_at is not None and stream.connected_once:
                stream.reconnects += 1
            stream.lost_at = None
            stream.connected_once = True

    def failed(self, label: str) -> None:
        with self._lock:
            stream = self._stream(label)
            stream.failures += 1
            if stream.lost_at is None:
                stream.lost_at = self.clock()

    def relisted(self, label: str) -> None:
        with self._lock:
            self._stream(label).relists += 1

    def disconnected(self) -> dict[str, float]:
        """Each stream cut off now (never connected included), with the seconds since it was."""
        now = self.clock()
        with self._lock:
            return {
                label: now - stream.lost_at
                for label, stream in self.streams.items()
                if stream.lost_at is not None
            }

    def disconnected_for(self) -> float:
        """The longest any stream has been cut off now, in seconds; 0 when all are connected."""
        return max(self.disconnected().values(), default=0.0)

    def snapshot(self) -> dict[str, StreamFeed]:
        """A copy of every stream's state, for the metrics."""
        with self._lock:
            return {label: StreamFeed(**vars(stream)) for label, stream in self.streams.items()}
