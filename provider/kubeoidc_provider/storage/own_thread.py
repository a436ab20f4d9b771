"""A thread of a storage's own that runs its blocking calls for coroutines on any event loop.

Why not ``loop.run_in_executor``: for every call it builds a ``concurrent.futures.Future`` (a condition
variable and callbacks), chains an asyncio future to it and wakes the loop once per call through the
loop's self-pipe; under load that costs the event loop more than the SQLite statement costs the storage's
thread. Here a call is a tuple on a ``queue.SimpleQueue`` and a plain asyncio future: the thread takes
everything queued, runs it, and hands the finished batch back with one ``call_soon_threadsafe`` per event
loop, so the requests that waited on the store together complete on one wake-up.

What a caller can rely on:

- calls run one at a time, in the order they were submitted, from any thread or event loop;
- each future is completed on the loop that submitted the call; a loop closed meanwhile is skipped
  (nobody is left waiting there);
- a call whose caller was cancelled before the call started is skipped; one cancelled while it ran
  runs to its end, and its result is dropped;
- an exception reaches the future of the call that raised it, and no other;
- :meth:`OwnThread.close` runs every call submitted before it, then its own last call (closing files),
  then the thread ends; a call submitted after it is refused at once, never left waiting; a runner
  dropped without it is collected, and its thread ends too;
- the thread does not survive ``os.fork()``: in the child, a runner the parent created refuses every
  call with a message that says so, instead of queueing calls that nothing would ever run (the provider's
  ``--workers`` processes each open their own storage after the fork).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import weakref
from collections.abc import Callable
from typing import Any, Final, TypeVar, TypeVarTuple, cast

__all__ = ["OwnThread"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

#: At most this many calls run before their loops are woken: a bound on how long a finished call's
#: caller waits for the calls queued with it.
MAX_BATCH: Final = 64

#: Put on the queue by :meth:`OwnThread.close` after its last call: the thread ends there.
_STOP: Final = object()

# A queued call: the callable, its arguments, the loop that waits and the future it waits on.
_Call = tuple[Callable[..., Any], tuple[Any, ...], asyncio.AbstractEventLoop, asyncio.Future[Any]]
# A finished call, handed back to its loop: its future, whether it returned, and what it returned or raised.
_Outcome = tuple[asyncio.Future[Any], bool, Any]

_alive: weakref.WeakSet[OwnThread] = weakref.WeakSet()


class OwnThread:
    """Runs calls on one thread of its own (named ``name``); see the module docstring for the guarantees.

    ``owner`` names what the thread serves in refusals (``"the SQLite storage"``)."""

    def __init__(self, name: str, *, owner: str) -> None:
        self._owner = owner
        self._queue: queue.SimpleQueue[_Call | object] = queue.SimpleQueue()
        # Makes "not closed yet, so queue it" one step, so no call can land behind the stop mark.
        self._gate = threading.Lock()
        self._refusal: str | None = None
        # The thread knows the queue only, so a runner dropped without close can be collected: then the
        # stop mark ends the thread.
        self._thread = threading.Thread(target=_serve, args=(self._queue,), name=name, daemon=True)
        self._thread.start()
        weakref.finalize(self, self._queue.put, _STOP)
        _alive.add(self)

    def submit(self, call: Callable[[*_Ts], _T], *args: *_Ts) -> asyncio.Future[_T]:
        """Queue ``call(*args)``; the returned future (of the running loop) completes with its outcome."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        with self._gate:
            if self._refusal is not None:
                raise RuntimeError(self._refusal)
            self._queue.put((call, args, loop, future))
        return future

    async def close(self, last: Callable[[], None]) -> None:
        """Refuse new calls, let the queued ones run, then ``last()`` (which may close files), and end the
        thread. Closing again does nothing."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._gate:
            if self._refusal is not None:
                return
            self._refusal = f"{self._owner} is closed"
            self._queue.put((last, (), loop, future))
            self._queue.put(_STOP)
        try:
            await future
        finally:
            await loop.run_in_executor(None, self._thread.join)

    def _orphan(self) -> None:
        """In a forked child: the thread is gone, so refuse calls (a fresh lock: the old one may be held)."""
        self._gate = threading.Lock()
        self._refusal = f"{self._owner} was opened before a fork, in the parent: open it where it is used"


def _serve(calls: queue.SimpleQueue[_Call | object]) -> None:
    """The thread: take what is queued (waiting for the first call only), run it, hand it back."""
    take = calls.get
    while True:
        batch = [take()]
        try:
            while len(batch) < MAX_BATCH:
                batch.append(take(block=False))
        except queue.Empty:
            pass
        if not _run(batch):
            return
        del batch  # while the thread waits, it holds nothing of the calls (nor of whom they belong to)


def _run(batch: list[_Call | object]) -> bool:
    """Run a batch and wake each waiting loop once; ``False`` once the stop mark was in it."""
    finished: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    going_on = True
    for item in batch:
        if item is _STOP:
            going_on = False  # nothing is queued after it (see close)
            continue
        call, args, loop, future = cast(_Call, item)
        if future.cancelled():
            continue
        try:
            outcome: _Outcome = (future, True, call(*args))
        except BaseException as error:  # the caller's to handle, not this thread's: it must go on
            outcome = (future, False, error)
        finished.setdefault(loop, []).append(outcome)
    for loop, outcomes in finished.items():
        # RuntimeError: that loop is closed, so nobody waits for these any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, outcomes)
    return going_on


def _settle(outcomes: list[_Outcome]) -> None:
    """On the waiting loop: complete each future, unless its caller was cancelled meanwhile."""
    for future, returned, value in outcomes:
        if future.done():
            continue
        if returned:
            future.set_result(value)
        else:
            future.set_exception(value)


def _orphan_all() -> None:
    for runner in list(_alive):
        runner._orphan()


os.register_at_fork(after_in_child=_orphan_all)
