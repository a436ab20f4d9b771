"""Several provider processes on one port (``--workers N``): one pod that uses more than one core.

The parent binds the listening sockets (the public port and the health port), then forks the workers;
each builds its own provider (registry watch, key set, state store connection) and serves the inherited
sockets with uvicorn, and the kernel hands each new connection to one of them. Everything a request
leaves behind is in the state store (SQLite in WAL mode, which serialises writers across processes, or
Redis), so a code issued by one worker is redeemed at another. Each worker watches the API on its own:
the registry is a few MiB, and a shared one would put a lock or a copy on every request.

The parent serves nothing: it passes SIGTERM and SIGINT on to every worker, and when one worker exits
on its own it stops the others and exits with that worker's status, so the pod restarts as a whole
rather than serving on with fewer workers than asked for. The workers are forked before any thread or
event loop exists in the parent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger(__name__)


def serve_forked(
    workers: int, sockets: list[socket.socket], serve_one: Callable[[list[socket.socket]], None]
) -> int:
    """Fork ``workers`` processes that each call ``serve_one(sockets)`` (bound, e.g. by
    ``main.bind``); wait for them. Returns the exit status for the parent: 0 after a requested stop,
    else the status of the worker that ended first."""
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            _worker(sockets, serve_one)
        children.append(pid)
    for sock in sockets:
        sock.close()
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            _signal(child, signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("serving with %d worker processes: %s", workers, ", ".join(map(str, children)))
    status = 0
    while children:
        pid, wait_status = os.wait()
        if pid not in children:
            continue
        children.remove(pid)
        code = os.waitstatus_to_exitcode(wait_status)
        if not stopping:
            logger.error("worker %d exited (%d): stopping the other workers", pid, code)
            stop(signal.SIGTERM, None)
            status = code if code > 0 else 1
    return status


def _worker(sockets: list[socket.socket], serve_one: Callable[[list[socket.socket]], None]) -> None:
    """The forked child: default signal handling (uvicorn installs its own), serve, and never return."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 0
    try:
        serve_one(sockets)
    except BaseException as error:
        if not isinstance(error, SystemExit | KeyboardInterrupt):
            logger.exception("worker %d failed", os.getpid())
        code = error.code if isinstance(error, SystemExit) and isinstance(error.code, int) else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.kill(pid, signum)
