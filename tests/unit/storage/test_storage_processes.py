"""Atomicity across processes: several provider processes sharing one SQLite file or one Redis."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubeoidc_provider.storage import Consumed, Storage
from kubeoidc_provider.storage.sqlite import SQLiteStorage

WORKER = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from kubeoidc_provider.storage import open_storage
    from kubeoidc_provider.storage.redis import RedisStorage

    async def main():
        url, prefix, go, action = sys.argv[1:5]
        storage = RedisStorage.from_url(url, prefix=prefix) if url.startswith("redis") else open_storage(url)
        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.001)
        if action == "consume":
            found = await storage.consume("code", "k")
            print("none" if found is None else "first" if found.first else "replay", flush=True)
        else:
            counts = [str(await storage.incr("attempts", "k", ttl=60)) for _ in range(25)]
            print(" ".join(counts), flush=True)
        await storage.close()

    asyncio.run(main())
    """
)


def run_workers(tmp_path: Path, url: str, prefix: str, action: str, count: int) -> list[str]:
    """Start ``count`` processes, release them together once all are ready, and return their outputs."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, prefix, str(go), action],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [proc.communicate(timeout=60)[0].strip() for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [proc.returncode for proc in procs] == [0] * count
    return outputs


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Storage, str, str]:
    """A storage in this process, and the URL and key prefix other processes reach it by."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"  # tmp_path is absolute: sqlite:////tmp/...
        storage = request.getfixturevalue("sqlite_file_storage")
        return storage, url, ""
    redis_storage = request.getfixturevalue("redis_storage")
    return redis_storage, request.getfixturevalue("redis_url"), redis_storage.prefix


@pytest.fixture
async def sqlite_file_storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "state.db")
    yield storage
    await storage.close()


async def test_processes_racing_to_consume_see_exactly_one_first_use(
    shared: tuple[Storage, str, str], tmp_path: Path
) -> None:
    storage, url, prefix = shared
    await storage.put("code", "k", {"client_id": "app"}, ttl=60)
    outputs = run_workers(tmp_path, url, prefix, "consume", count=8)
    assert sorted(outputs) == ["first"] + ["replay"] * 7
    assert await storage.consume("code", "k") == Consumed({"client_id": "app"}, first=False)


async def test_processes_incrementing_one_counter_lose_no_count(
    shared: tuple[Storage, str, str], tmp_path: Path
) -> None:
    storage, url, prefix = shared
    outputs = run_workers(tmp_path, url, prefix, "incr", count=4)
    counts = sorted(int(n) for line in outputs for n in line.split())
    assert counts == list(range(1, 101))
    assert await storage.incr("attempts", "k", ttl=60) == 101
