"""What a hop from the event loop to a worker thread costs: anyio (litestar's ``sync_to_thread``),
``loop.run_in_executor`` and the checkout's own :class:`kaskad.api.threads.Workers`.

    .venv/bin/python bench/thread_hop.py [--calls 3000] [--rounds 3]

Prints CPU and wall time per call of a no-op job, one caller at a time and 16 at once, under uvloop
as ``kaskad serve`` runs. The job does nothing, so the figures are the hop alone.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import time

import anyio.to_thread
import uvloop

from kaskad.api.threads import Workers


def noop(x: int) -> int:
    return x


async def main(calls: int, rounds: int) -> None:
    loop = asyncio.get_running_loop()
    executor = concurrent.futures.ThreadPoolExecutor(8)
    workers = Workers(8, "bench")
    hops = {
        "anyio.to_thread.run_sync": lambda: anyio.to_thread.run_sync(noop, 1),
        "loop.run_in_executor": lambda: loop.run_in_executor(executor, noop, 1),
        "kaskad Workers.run": lambda: workers.run(noop, 1),
    }
    for r in range(rounds):
        print(f"round {r + 1}: µs per call, CPU / wall")
        for concurrent_callers in (1, 16):
            for name, hop in hops.items():
                async def caller(n: int) -> None:
                    for _ in range(n):
                        await hop()

                cpu, wall = time.process_time(), time.perf_counter()
                await asyncio.gather(*(caller(calls // concurrent_callers) for _ in range(concurrent_callers)))
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(f"  {concurrent_callers:2d} at once  {name:26s} {cpu / calls * 1e6:7.1f} / {wall / calls * 1e6:7.1f}")
    workers.stop()
    executor.shutdown()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    uvloop.run(main(args.calls, args.rounds))
