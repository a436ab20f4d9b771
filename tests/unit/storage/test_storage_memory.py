"""In-memory specifics: expired entries do not pile up in a long-running process."""

from __future__ import annotations

from kubeoidc_provider.storage.memory import MemoryStorage
from support.storage import FakeClock


async def test_expired_entries_and_counters_are_swept_once_the_sweep_interval_has_passed() -> None:
    clock = FakeClock()
    storage = MemoryStorage(clock=clock, sweep_interval=60)
    for i in range(100):
        await storage.put("code", f"k{i}", {"v": i}, ttl=5)
        await storage.incr("attempts", f"k{i}", ttl=5)
    clock.now += 30
    await storage.put("code", "fresh", {"v": "fresh"}, ttl=600)
    assert len(storage) == 201  # expired, never read, not yet swept

    clock.now += 31
    await storage.incr("attempts", "fresh", ttl=600)
    assert len(storage) == 2
    assert await storage.get("code", "fresh") == {"v": "fresh"}


async def test_an_expired_entry_is_dropped_when_read() -> None:
    clock = FakeClock()
    storage = MemoryStorage(clock=clock)
    await storage.put("code", "k", {"v": 1}, ttl=5)
    clock.now += 5
    assert await storage.get("code", "k") is None
    assert len(storage) == 0
