"""The hop to SQLite's thread: what one state operation costs the event loop, against run_in_executor.

The SQLite storage's own statements are run two ways, side by side, in one process on uvloop (as the
provider serves): through the storage (its own thread, each loop woken once per batch of finished
statements), and through ``loop.run_in_executor`` on a pool of one thread (the reference: one
``concurrent.futures.Future`` and one wake-up per statement). ``--concurrency`` coroutines (16 by
default, as many as the connections of ``bench/run.py``) each put or get until ``--operations`` are
done. Printed per operation and way: operations per second, the CPU time of the event loop's thread
and of the whole process per operation, and the storage's figures as ratios of the reference's.

Usage: python bench/storage_handoff.py [--operations N] [--concurrency N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import uvloop

from kubeoidc_provider.storage.sqlite import SQLiteStorage

#: A value the size of an opaque access token's record.
VALUE = {"client_id": "bench-client", "scope": "api:read", "sub": "bench-client", "exp": 1_900_000_000}


@dataclass
class Figures:
    per_second: float
    loop_us: float
    process_us: float


async def measure(operation: Callable[[int], Awaitable[Any]], operations: int, concurrency: int) -> Figures:
    """Run ``operation(i)`` for i in 0..operations-1 from ``concurrency`` coroutines at once."""
    counter = iter(range(operations))

    async def worker() -> None:
        for index in counter:
            await operation(index)

    loop_started, process_started, started = time.thread_time(), time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    loop_cpu, process_cpu = time.thread_time() - loop_started, time.process_time() - process_started
    return Figures(operations / elapsed, loop_cpu / operations * 1e6, process_cpu / operations * 1e6)


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory() as folder:
        storage = SQLiteStorage(f"{folder}/state.db")
        reference_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reference")
        await storage.put("code", "read", VALUE, ttl=600)
        ways: dict[str, dict[str, Callable[[int], Awaitable[Any]]]] = {
            "put": {
                "storage": lambda i: storage.put("access", f"s{i}", VALUE, 600),
                "run_in_executor": lambda i: loop.run_in_executor(
                    reference_thread, storage._put, "access", f"r{i}", VALUE, 600
                ),
            },
            "get": {
                "storage": lambda i: storage.get("code", "read"),
                "run_in_executor": lambda i: loop.run_in_executor(
                    reference_thread, storage._get, "code", "read"
                ),
            },
        }
        print(f"{args.operations} operations per run, {args.concurrency} coroutines, uvloop")
        print(
            "| operation | round | way | ops/s | loop CPU us/op | process CPU us/op | ops/s ratio "
            "| loop CPU ratio |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name, by_way in ways.items():
            for round_number in range(1, args.rounds + 1):
                figures = {
                    way: await measure(operation, args.operations, args.concurrency)
                    for way, operation in by_way.items()
                }
                reference = figures["run_in_executor"]
                for way, found in figures.items():
                    ratios = (
                        f"{found.per_second / reference.per_second:.2f}x | "
                        f"{found.loop_us / reference.loop_us:.2f}x"
                        if way == "storage"
                        else "- | -"
                    )
                    print(
                        f"| {name} | {round_number} | {way} | {found.per_second:.0f} | {found.loop_us:.1f} | "
                        f"{found.process_us:.1f} | {ratios} |"
                    )
        reference_thread.shutdown()
        await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
