"""A provider replica as a child process (``python -m support.replica CONFIG``): started with its output
followed on a thread of its own, awaited until it listens, stopped.

The output is read for as long as the process runs, so that a replica (or a worker it forked) never
blocks on a full pipe, and every wait has a deadline: a replica that never gets ready fails the test
with what it printed, it never holds it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from support.replica import READY
from support.replicas_flow import Replica

TESTS_DIR = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 30.0
STOP_GRACE = 5.0

#: The thread that reads each running replica's output, by replica name.
_readers: dict[str, threading.Thread] = {}


def start_replica(name: str, config: Path, port: int) -> Replica:
    """The replica ``config`` describes, started; its output collected into ``Replica.lines``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "support.replica", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=config.parent,
    )
    replica = Replica(name, f"http://127.0.0.1:{port}", process)
    reader = threading.Thread(target=_collect, args=(replica,), name=f"replica-{name}", daemon=True)
    reader.start()
    _readers[name] = reader
    return replica


def wait_ready(replica: Replica, timeout: float = STARTUP_TIMEOUT) -> None:
    """Return once the replica listens (it prints ``READY``); fail if it stops or the time runs out."""
    deadline = time.monotonic() + timeout
    while READY not in replica.lines:
        if replica.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"replica {replica.name} did not start; it printed:\n{replica.output()}")
        time.sleep(0.02)


def stop_replica(replica: Replica) -> None:
    """SIGTERM (uvicorn shuts down gracefully), SIGKILL after a grace period; then close its output."""
    if replica.process.poll() is None:
        replica.process.terminate()
        try:
            replica.process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait(timeout=STOP_GRACE)
    reader = _readers.pop(replica.name, None)
    if reader is not None:
        reader.join(timeout=STOP_GRACE)
    if replica.process.stdout is not None:
        replica.process.stdout.close()


def _collect(replica: Replica) -> None:
    assert replica.process.stdout is not None
    for line in replica.process.stdout:
        replica.lines.append(line.rstrip("\n"))
