"""Fixtures for the storage tests: every backend behind one ``backend`` fixture, with a way to let time pass.

Memory and SQLite run on a fake clock, so their expiry tests take no time. Redis keeps its own time:
there, letting time pass is a (short) sleep. The Redis URL comes from ``KUBEOIDC_TEST_REDIS_URL``;
without it the Redis cases are skipped on a workstation and fail in CI (``CI`` set), where a missing
Redis would otherwise hide a whole backend.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio

from kubeoidc_provider.storage import Storage
from kubeoidc_provider.storage.memory import MemoryStorage
from kubeoidc_provider.storage.redis import RedisStorage
from kubeoidc_provider.storage.sqlite import SQLiteStorage
from support.storage import Backend, FakeClock

REDIS_URL_ENV = "KUBEOIDC_TEST_REDIS_URL"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def redis_url() -> str:
    """The test Redis's URL; skip (workstation) or fail (CI) when there is none."""
    url = os.environ.get(REDIS_URL_ENV, "").strip()
    if not url:
        if in_ci():
            pytest.fail(f"{REDIS_URL_ENV} is not set, but CI is: the Redis storage backend would go untested")
        pytest.skip(
            f"{REDIS_URL_ENV} is not set: start a redis-server and point it there to run the Redis cases"
        )
    return url


@pytest.fixture
def redis_server_binary() -> str:
    """The ``redis-server`` binary, for tests that start servers of their own (TLS, Sentinel)."""
    binary = shutil.which("redis-server")
    if binary is None:
        if in_ci():
            pytest.fail(
                "redis-server is not on PATH, but CI is: the TLS and Sentinel cases would go untested"
            )
        pytest.skip("redis-server is not on PATH: install it to run the TLS and Sentinel cases")
    return binary


@pytest.fixture
async def redis_storage(redis_url: str) -> AsyncIterator[RedisStorage]:
    """A Redis storage under a key prefix of its own, whose keys are removed afterwards."""
    async with own_redis_storage(redis_url) as storage:
        yield storage


@contextlib.asynccontextmanager
async def own_redis_storage(redis_url: str) -> AsyncIterator[RedisStorage]:
    prefix = f"kubeoidc-test:{uuid.uuid4().hex}:"
    storage = RedisStorage.from_url(redis_url, prefix=prefix)
    try:
        yield storage
    finally:
        await storage.close()
        client = redis.asyncio.Redis.from_url(redis_url)
        keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        "sqlite-without-returning",
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    name: str = request.param
    if name == "redis":
        # Not through the redis_storage fixture: an async fixture cannot be asked for from another one.
        async with own_redis_storage(request.getfixturevalue("redis_url")) as storage:
            yield Backend(name, storage, time.sleep)
        return
    clock = FakeClock()
    fake: Storage
    if name == "memory":
        fake = MemoryStorage(clock=clock)
    else:
        fake = SQLiteStorage(
            tmp_path / "state.db", clock=clock, use_returning=None if name == "sqlite" else False
        )
    try:
        yield Backend(name, fake, clock.advance)
    finally:
        await fake.close()
