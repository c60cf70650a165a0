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
    last_run: float = 0.0


JOBS: dict[str, Job] = {}


def every(seconds: float, name: str | None = None):
    """Decorator: run ``fn(runtime, now)`` about every ``seconds``."""

    def wrap(fn):
        job_name = name or f"{fn.__module__}.{fn.__qualname__}"
        JOBS[job_name] = Job(job_name, seconds, fn)
        return fn

    return wrap


def run_due(runtime: Any, now: datetime, force: bool = False) -> list[str]:
    """Run every job whose interval has passed; a failing job is logged, not raised."""
    ran = []
    mono = time.monotonic()
    for job in list(JOBS.values()):
        if not force and mono - job.last_run < job.seconds:
            continue
        job.last_run = mono
        try:
            job.fn(runtime, now)
            ran.append(job.name)
        except Exception:
            log.exception("periodic job %s failed", job.name)
    return ran


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
