"""A slow state store never stalls the provider: every storage call is awaited, none blocks the loop.

Each case serves the provider for real (uvicorn, one event loop) with a store whose reads hang until the
test lets them go: one that waits asynchronously, as a slow Redis round trip does, and an SQLite store
whose own thread is stuck, as on a slow disk. While a browser's request waits on the store, discovery
and the JWKS still answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from kubeoidc_provider.storage import Storage
from kubeoidc_provider.storage.memory import MemoryStorage
from kubeoidc_provider.storage.sqlite import SQLiteStorage
from support.live import free_port, serve
from support.provider import make_provider

#: Long enough for any loaded machine; the test never waits this long unless the loop is stalled.
PATIENCE = 10.0


class SlowMemoryStorage(MemoryStorage):
    """Reads wait, without blocking the loop, until the test releases them."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.released = threading.Event()

    async def get(self, kind: str, key: str) -> dict[str, Any] | None:
        self.entered.set()
        await asyncio.to_thread(self.released.wait, PATIENCE)  # the loop serves others meanwhile
        return await super().get(kind, key)


class StuckSQLiteStorage(SQLiteStorage):
    """Reads block SQLite's own thread until the test releases them."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.entered = threading.Event()
        self.released = threading.Event()

    def _get(self, kind: str, key: str) -> dict[str, Any] | None:
        self.entered.set()
        self.released.wait(PATIENCE)
        return super()._get(kind, key)


SlowStore = SlowMemoryStorage | StuckSQLiteStorage


@pytest.fixture(params=["slow-async", "stuck-sqlite-thread"])
def slow_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SlowStore]:
    store: SlowStore
    if request.param == "slow-async":
        store = SlowMemoryStorage()
    else:
        store = StuckSQLiteStorage(tmp_path / "state.db")
    yield store
    store.released.set()


def test_a_slow_store_does_not_stall_discovery(slow_store: SlowStore) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    storage: Storage = slow_store
    provider = make_provider(issuer=issuer, alg="ES256", storage=storage)
    waiting: list[httpx.Response] = []
    with serve(provider, port):
        # A browser with a session cookie: /authorize loads its session from the store, and waits.
        browser = threading.Thread(
            target=lambda: waiting.append(
                httpx.get(f"{issuer}/authorize", cookies={"kubeoidc_session": "s"}, timeout=PATIENCE)
            )
        )
        browser.start()
        assert slow_store.entered.wait(PATIENCE), "the request never reached the store"

        discovery = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=PATIENCE)
        jwks = httpx.get(f"{issuer}/jwks", timeout=PATIENCE)

        assert discovery.status_code == 200
        assert discovery.json()["issuer"] == issuer
        assert jwks.status_code == 200
        assert browser.is_alive(), "the store's request finished before it was released"
        assert not waiting
        slow_store.released.set()
        browser.join(PATIENCE)
    assert len(waiting) == 1  # and once released, the waiting request got its answer
