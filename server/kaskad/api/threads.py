"""A cheap hop from the event loop to a worker thread, for the till's calls.

Litestar runs a ``sync_to_thread`` handler through ``anyio.to_thread.run_sync``: a
capacity limiter, a cancel scope, a thread picked and woken per call. On the development
box that hop costs 90–210 µs of CPU per call (``loop.run_in_executor`` 35–140 µs), a good
part of a quote's whole cost. The checkout's handlers are ``async`` and hand their
blocking work to :data:`checkout_threads` instead: a fixed set of threads taking jobs
from one queue and settling the caller's future on its loop, 8–50 µs a call
(``bench/thread_hop.py`` prints the three side by side).

A job whose caller was cancelled (the client went away) before a thread took it is
dropped unrun; one already running finishes, as with anyio's default, and its result is
discarded. The job runs in a copy of the caller's context variables.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import queue
import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def _settle(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.done():  # cancelled meanwhile
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class Workers:
    """``size`` daemon threads started on first use (again in a forked child)."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._pid = 0
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on one of the threads and return (or raise) what it did."""
        if self._pid != os.getpid():
            self._start()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, contextvars.copy_context(), functools.partial(fn, *args, **kwargs)))
        return await future

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._jobs = queue.SimpleQueue()  # a forked child does not inherit the parent's threads
            self._threads = [threading.Thread(target=self._work, args=(self._jobs,), name=f"{self.name}-{i}", daemon=True)
                             for i in range(self.size)]
            for thread in self._threads:
                thread.start()
            self._pid = os.getpid()

    @staticmethod
    def _work(jobs: queue.SimpleQueue) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            loop, future, context, call = job
            if future.cancelled():
                continue
            try:
                result, error = context.run(call), None
            except BaseException as exc:  # handed to the caller, which re-raises it
                result, error = None, exc
            try:
                loop.call_soon_threadsafe(_settle, future, result, error)
            except RuntimeError:  # the loop has closed: nobody is waiting
                pass
            del job, future, result, error

    def stop(self) -> None:
        """Let the threads finish the jobs queued and end (a later :meth:`run` starts them again)."""
        with self._lock:
            if self._pid != os.getpid():
                return
            for _ in self._threads:
                self._jobs.put(None)
            for thread in self._threads:
                thread.join(timeout=30)
            self._threads, self._pid = [], 0


#: The checkout's threads: fewer than the connections the database pool keeps (10), so a
#: checkout never opens an overflow connection, which the pool closes again when it comes
#: back and PostgreSQL starts as a new backend with nothing prepared. With 16 threads per
#: process the bench opened 35 connections in 8 s of redeems and PostgreSQL spent half as much
#: again per redeem; with 8, none.
checkout_threads = Workers(8, "kaskad-checkout")
