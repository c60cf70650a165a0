"""Periodic jobs (RFM recompute, time-based triggers, points expiry, discount steps…).

A feature area puts its jobs in ``kaskad/<area>/jobs.py`` with :func:`every`; the engine's scheduler
(the leader, when several run) calls :func:`run_due` on each tick. A job gets
the runtime and the current time and must be safe to run twice (idempotent),
since a crash can interrupt it after it did part of its work.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

log = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    seconds: float
    fn: Callable[[Any, datetime], Any]
    last_run: float | None = None  # time.monotonic() of its last run in this process; None: not run yet


JOBS: dict[str, Job] = {}


def every(seconds: float, name: str | None = None):
    """Decorator: run ``fn(runtime, now)`` about every ``seconds``."""

    def wrap(fn):
        job_name = name or f"{fn.__module__}.{fn.__qualname__}"
        JOBS[job_name] = Job(job_name, seconds, fn)
        return fn

    return wrap


def run_due(runtime: Any, now: datetime, force: bool = False) -> list[str]:
    """Run every job whose interval has passed; a failing job is logged, not raised.

    A job is due when its interval has passed in this process and since the run recorded in
    ``periodic_runs``, written after each run: a scheduler that starts runs only the jobs that
    are due, not all of them at once. Intervals are real time, not :mod:`kaskad.clock` time.
    """
    ran = []
    mono = time.monotonic()
    recorded = _recorded(runtime)
    for job in list(JOBS.values()):
        if not force:
            # monotonic time counts from the machine's boot, not from 0 at this process's start:
            # a job that has not run in this process is due whatever the clock reads
            if job.last_run is not None and mono - job.last_run < job.seconds:
                continue
            at = recorded.get(job.name)
            if at is not None and (ago := time.time() - at) < job.seconds:
                job.last_run = mono - ago  # due one interval after the recorded run
                continue
        job.last_run = mono
        started, error = time.time(), None
        try:
            job.fn(runtime, now)
            ran.append(job.name)
        except Exception as exc:
            log.exception("periodic job %s failed", job.name)
            error = f"{type(exc).__name__}: {exc}"
        _record(runtime, recorded, job.name, started, time.time() - started, error)
    return ran


def _recorded(runtime: Any) -> dict[str, float]:
    """When each job last started (epoch seconds), read from the database once per runtime."""
    cache = runtime.extras.get("periodic_runs")
    if cache is None:
        from sqlalchemy import select

        from kaskad.store.models import PeriodicRun

        cache = {}
        try:
            with runtime.sessions() as session:
                cache = {n: at.timestamp() for n, at in session.execute(select(PeriodicRun.name, PeriodicRun.started_at))}
        except Exception:  # an unmigrated database: jobs run on the in-process schedule alone
            log.warning("could not read periodic_runs", exc_info=True)
        runtime.extras["periodic_runs"] = cache
    return cache


def _record(runtime: Any, cache: dict[str, float], name: str, started: float, seconds: float, error: str | None) -> None:
    from datetime import timezone

    from kaskad.store.dialect import insert_for
    from kaskad.store.engine import transaction
    from kaskad.store.models import PeriodicRun

    cache[name] = started
    row = {"started_at": datetime.fromtimestamp(started, timezone.utc), "seconds": seconds, "error": error}
    try:
        with transaction(runtime.sessions) as session:
            stmt = insert_for(session, PeriodicRun.__table__).values(name=name, **row)
            session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=row))
    except Exception:  # the job ran; failing to note it only means it may run again after a restart
        log.warning("could not record the run of periodic job %s", name, exc_info=True)


def load_jobs() -> dict[str, Job]:
    """Import every ``kaskad.<area>.jobs`` module so its jobs register themselves."""
    import importlib
    import pkgutil

    import kaskad

    for info in pkgutil.iter_modules(kaskad.__path__):
        if info.ispkg:
            try:
                importlib.import_module(f"kaskad.{info.name}.jobs")
            except ModuleNotFoundError as exc:
                if exc.name != f"kaskad.{info.name}.jobs":
                    raise
    return JOBS
