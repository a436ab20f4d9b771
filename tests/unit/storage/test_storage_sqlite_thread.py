"""SQLite's own thread: how a coroutine's statement is handed over and its outcome handed back.

Each case first holds the thread on a call that waits for the test's go-ahead, so the calls under test
are queued together (one batch), as they are when many requests wait on the store at once.
"""

from __future__ import annotations

import asyncio
import gc
import os
import select
import signal
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from kubeoidc_provider.storage import Consumed
from kubeoidc_provider.storage.own_thread import OwnThread
from kubeoidc_provider.storage.sqlite import SQLiteStorage

#: Long enough for any loaded machine; a test waits this long only when something hangs.
PATIENCE = 10.0


class Hold:
    """A call that occupies the thread until :meth:`release`; :meth:`started` waits until it runs."""

    def __init__(self) -> None:
        self._running = threading.Event()
        self._go = threading.Event()

    def __call__(self) -> None:
        self._running.set()
        self._go.wait(PATIENCE)

    async def started(self) -> None:
        assert await asyncio.to_thread(self._running.wait, PATIENCE), "the held call never started"

    def release(self) -> None:
        self._go.set()


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SQLiteStorage]:
    storage = SQLiteStorage(tmp_path / "state.db")
    yield storage
    await storage.close()


async def hold_thread(storage: SQLiteStorage) -> tuple[Hold, asyncio.Future[None]]:
    hold = Hold()
    held = storage._thread.submit(hold)
    await hold.started()
    return hold, held


async def test_a_call_cancelled_while_queued_never_runs(storage: SQLiteStorage) -> None:
    hold, held = await hold_thread(storage)
    cancelled = asyncio.ensure_future(storage.put("code", "k", {"v": "cancelled"}, ttl=60))
    await asyncio.sleep(0)  # the put is queued behind the held call
    cancelled.cancel()
    kept = asyncio.ensure_future(storage.put("code", "other", {"v": "kept"}, ttl=60))
    await asyncio.sleep(0)
    hold.release()

    await asyncio.wait_for(held, PATIENCE)
    await asyncio.wait_for(kept, PATIENCE)
    assert cancelled.cancelled()
    assert await storage.get("code", "k") is None
    assert await storage.get("code", "other") == {"v": "kept"}


async def test_an_exception_reaches_only_the_call_that_raised_it(storage: SQLiteStorage) -> None:
    await storage.put("code", "k", {"v": 1}, ttl=60)
    hold, held = await hold_thread(storage)
    before = asyncio.ensure_future(storage.consume("code", "k"))
    failing = asyncio.ensure_future(storage.put("code", "k2", {"v": {1, 2}}, ttl=60))  # a set: not JSON
    refused_kind = asyncio.ensure_future(storage.get("a:b", "k"))
    after = asyncio.ensure_future(storage.consume("code", "k"))
    await asyncio.sleep(0)
    hold.release()

    every: list[asyncio.Future[Any]] = [held, before, failing, refused_kind, after]
    done, _ = await asyncio.wait(every, timeout=PATIENCE)
    assert len(done) == 5
    assert before.result() == Consumed({"v": 1}, first=True)
    assert isinstance(failing.exception(), TypeError)
    with pytest.raises(ValueError, match="kind"):
        refused_kind.result()
    assert after.result() == Consumed({"v": 1}, first=False)
    assert await storage.incr("attempts", "k", ttl=60) == 1  # and the thread goes on


async def test_calls_queued_together_complete_on_one_wake_up_of_their_loop(
    storage: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    wake_ups: list[Callable[..., Any]] = []
    original = loop.call_soon_threadsafe

    def counting(callback: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Handle:
        wake_ups.append(callback)
        return original(callback, *args, **kwargs)

    hold, held = await hold_thread(storage)
    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    writes = [asyncio.ensure_future(storage.incr("attempts", "k", ttl=60)) for _ in range(10)]
    await asyncio.sleep(0)
    hold.release()

    counts = await asyncio.wait_for(asyncio.gather(held, *writes), PATIENCE)
    assert counts[1:] == list(range(1, 11))
    assert len(wake_ups) == 2  # one for the held call's batch, one for the ten writes queued behind it


async def test_close_finishes_the_calls_queued_before_it_and_refuses_later_ones(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "state.db")
    await storage.put("code", "k", {"v": 1}, ttl=60)
    hold, held = await hold_thread(storage)
    pending = [
        asyncio.ensure_future(storage.consume("code", "k")),
        asyncio.ensure_future(storage.put("code", "k2", {"v": 2}, ttl=60)),
        asyncio.ensure_future(storage.incr("attempts", "k", ttl=60)),
    ]
    await asyncio.sleep(0)
    closing = asyncio.ensure_future(storage.close())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="SQLite storage is closed"):
        await storage.get("code", "k")  # refused at once, while the earlier calls still wait
    hold.release()

    await asyncio.wait_for(closing, PATIENCE)
    assert [future.result() for future in pending] == [Consumed({"v": 1}, first=True), None, 1]
    await asyncio.wait_for(held, PATIENCE)
    with pytest.raises(RuntimeError, match="SQLite storage is closed"):
        await storage.put("code", "k3", {"v": 3}, ttl=60)
    await asyncio.wait_for(storage.close(), PATIENCE)  # closing again does nothing

    reopened = SQLiteStorage(tmp_path / "state.db")  # what was queued before close was written
    assert await reopened.get("code", "k2") == {"v": 2}
    await reopened.close()


async def test_close_with_every_queued_call_cancelled_does_not_hang(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "state.db")
    hold, held = await hold_thread(storage)
    pending = [asyncio.ensure_future(storage.get("code", f"k{i}")) for i in range(5)]
    await asyncio.sleep(0)
    for future in pending:
        future.cancel()
    closing = asyncio.ensure_future(storage.close())
    await asyncio.sleep(0)
    hold.release()

    await asyncio.wait_for(closing, PATIENCE)
    await asyncio.wait_for(held, PATIENCE)
    assert all(future.cancelled() for future in pending)


async def test_calls_from_two_event_loops_in_one_batch_each_complete_on_their_own_loop(
    storage: SQLiteStorage,
) -> None:
    hold, held = await hold_thread(storage)
    queued = threading.Barrier(3, timeout=PATIENCE)
    counts: dict[str, list[int]] = {}

    async def count(name: str) -> None:
        loop = asyncio.get_running_loop()
        writes = [storage.incr("attempts", "shared", ttl=60) for _ in range(20)]
        futures = [asyncio.ensure_future(write) for write in writes]
        await asyncio.sleep(0)  # every write queued
        queued.wait()
        results = await asyncio.gather(*futures)
        assert asyncio.get_running_loop() is loop
        counts[name] = list(results)

    threads = [threading.Thread(target=asyncio.run, args=(count(name),)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    await asyncio.to_thread(queued.wait)
    hold.release()
    for thread in threads:
        await asyncio.to_thread(thread.join, PATIENCE)

    await asyncio.wait_for(held, PATIENCE)
    assert sorted(counts["a"] + counts["b"]) == list(range(1, 41))
    assert await storage.incr("attempts", "shared", ttl=60) == 41


async def test_a_loop_closed_while_its_call_waits_does_not_stop_the_thread(storage: SQLiteStorage) -> None:
    hold, held = await hold_thread(storage)

    async def queue_and_leave() -> None:
        storage._thread.submit(storage._put, "code", "orphan", {"v": "written"}, 60)

    def queue_from_a_loop_that_then_closes() -> None:
        gone = asyncio.new_event_loop()
        try:
            gone.run_until_complete(queue_and_leave())
        finally:
            gone.close()  # the call is queued, but its loop is gone before it finishes

    try:
        await asyncio.to_thread(queue_from_a_loop_that_then_closes)
    finally:
        hold.release()

    await asyncio.wait_for(held, PATIENCE)
    assert await asyncio.wait_for(storage.get("code", "orphan"), PATIENCE) == {"v": "written"}


async def test_own_thread_ends_once_closed() -> None:
    runner = OwnThread("test-own-thread", owner="the test runner")
    assert await runner.submit(sum, [1, 2, 3]) == 6
    closed: list[bool] = []
    await asyncio.wait_for(runner.close(lambda: closed.append(True)), PATIENCE)
    assert closed == [True]
    assert not runner._thread.is_alive()
    with pytest.raises(RuntimeError, match="the test runner is closed"):
        runner.submit(sum, [1])


async def test_a_storage_dropped_without_close_ends_its_threads(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "state.db")
    await storage.put("code", "k", {"v": 1}, ttl=60)
    assert storage._checkpointer is not None
    threads = [storage._thread._thread, storage._checkpointer]
    del storage
    gc.collect()

    for thread in threads:
        await asyncio.to_thread(thread.join, PATIENCE)
        assert not thread.is_alive(), f"{thread.name} outlived its storage"


async def test_a_storage_opened_before_a_fork_refuses_calls_in_the_child(storage: SQLiteStorage) -> None:
    await storage.put("code", "k", {"v": 1}, ttl=60)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what a call does, and leave without running pytest's teardown
        outcome = "no error"
        try:
            asyncio.run(asyncio.wait_for(storage.get("code", "k"), PATIENCE))
        except RuntimeError as error:
            outcome = str(error)
        except BaseException as error:
            outcome = repr(error)
        os.write(write, outcome.encode())
        os._exit(0)
    os.close(write)
    try:
        ready, _, _ = await asyncio.to_thread(select.select, [read], [], [], PATIENCE)
        message = os.read(read, 1000).decode() if ready else "no answer"
    finally:
        os.close(read)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert message == "the SQLite storage was opened before a fork, in the parent: open it where it is used"
    assert await storage.get("code", "k") == {"v": 1}  # the parent's storage still works
