"""The checkout's hop to a worker thread: results, errors, cancellation and context come back as awaited."""

import asyncio
import contextvars
import threading

import pytest

from kaskad.api.threads import Workers

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


def test_a_job_runs_on_a_worker_thread_and_returns_its_result():
    workers = Workers(2, "t")

    async def main():
        return await workers.run(lambda a, b=0: (threading.current_thread().name, a + b), 2, b=3)

    try:
        name, total = asyncio.run(main())
    finally:
        workers.stop()
    assert total == 5
    assert name.startswith("t-") and name != threading.current_thread().name


def test_an_error_in_the_job_is_raised_to_the_caller():
    workers = Workers(1, "t")

    def fail():
        raise LookupError("no such code")

    async def main():
        with pytest.raises(LookupError, match="no such code"):
            await workers.run(fail)
        return await workers.run(lambda: "still serving")  # the thread survived

    try:
        assert asyncio.run(main()) == "still serving"
    finally:
        workers.stop()


def test_the_job_sees_the_callers_context_variables():
    workers = Workers(1, "t")

    async def main():
        request_id.set("r-42")
        return await workers.run(request_id.get)

    try:
        assert asyncio.run(main()) == "r-42"
    finally:
        workers.stop()


def test_a_job_whose_caller_went_away_before_it_started_is_not_run():
    workers = Workers(1, "t")
    release, ran = threading.Event(), []

    async def main():
        busy = asyncio.ensure_future(workers.run(release.wait, 10))  # holds the only thread
        waiting = asyncio.ensure_future(workers.run(ran.append, "late"))
        await asyncio.sleep(0.05)
        waiting.cancel()  # the client disconnected while its job was queued
        await asyncio.sleep(0.05)
        release.set()
        assert await busy is True
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return await workers.run(lambda: "next")

    try:
        assert asyncio.run(main()) == "next"
    finally:
        workers.stop()
    assert ran == []


def test_many_concurrent_callers_each_get_their_own_answer():
    workers = Workers(4, "t")

    async def main():
        return await asyncio.gather(*(workers.run(lambda i=i: i * i) for i in range(500)))

    try:
        assert asyncio.run(main()) == [i * i for i in range(500)]
    finally:
        workers.stop()


def test_the_hop_bench_docs_loyalty_names_runs_and_prints_the_three_hops():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[2]
    assert "`bench/thread_hop.py`" in (root / "docs" / "loyalty.md").read_text()
    r = subprocess.run([sys.executable, "bench/thread_hop.py", "--calls", "160", "--rounds", "1"], cwd=root,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [line.split() for line in r.stdout.splitlines() if "at once" in line]
    assert [(row[0], row[3]) for row in rows] == [(n, hop) for n in ("1", "16") for hop in
                                                  ("anyio.to_thread.run_sync", "loop.run_in_executor", "kaskad")]
    assert all(float(row[-3]) > 0 for row in rows)  # CPU µs per call
