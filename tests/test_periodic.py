"""Periodic jobs run on their interval across restarts: the last run of each is recorded in
``periodic_runs``, and a scheduler that starts runs only the jobs that are due."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from kaskad import clock, periodic
from kaskad.store.engine import transaction
from kaskad.store.models import PeriodicRun


@pytest.fixture
def jobs(monkeypatch):
    """Two jobs of our own instead of the registered ones: one counts its runs, one fails."""
    calls: list[str] = []

    def hourly(runtime, now):
        calls.append("hourly")

    def broken(runtime, now):
        calls.append("broken")
        raise RuntimeError("the report table is locked")

    monkeypatch.setattr(periodic, "JOBS", {
        "t.hourly": periodic.Job("t.hourly", 3600, hourly), "t.broken": periodic.Job("t.broken", 60, broken)})
    return calls


def restart(runtime) -> None:
    """What a new scheduler process starts with: no job run in it yet, nothing read from the database."""
    for job in periodic.JOBS.values():
        job.last_run = None
    runtime.extras.pop("periodic_runs", None)


def rows(runtime) -> dict[str, PeriodicRun]:
    with runtime.sessions() as s:
        return {r.name: r for r in s.scalars(select(PeriodicRun))}


def backdate(runtime, name: str, by: timedelta) -> None:
    with transaction(runtime.sessions) as s:
        row = s.get(PeriodicRun, name)
        s.execute(update(PeriodicRun).where(PeriodicRun.name == name).values(started_at=row.started_at - by))


def test_a_restart_runs_only_the_jobs_that_are_due(runtime, jobs):
    assert periodic.run_due(runtime, clock.now()) == ["t.hourly"]  # the broken one ran too, and failed
    assert jobs == ["hourly", "broken"]
    recorded = rows(runtime)
    assert recorded["t.hourly"].error is None and recorded["t.hourly"].seconds >= 0
    assert recorded["t.broken"].error == "RuntimeError: the report table is locked"
    assert abs(recorded["t.hourly"].started_at - datetime.now(timezone.utc)) < timedelta(minutes=1)

    assert periodic.run_due(runtime, clock.now()) == [] and len(jobs) == 2  # same process: not due yet

    restart(runtime)
    assert periodic.run_due(runtime, clock.now()) == [] and len(jobs) == 2  # a restart: still not due

    # Two minutes later the one-minute job is due again, the hourly one is not.
    backdate(runtime, "t.hourly", timedelta(minutes=2))
    backdate(runtime, "t.broken", timedelta(minutes=2))
    restart(runtime)
    periodic.run_due(runtime, clock.now())
    assert jobs == ["hourly", "broken", "broken"]

    # An hour later (as recorded) the hourly job runs after a restart, once.
    backdate(runtime, "t.hourly", timedelta(hours=1))
    restart(runtime)
    assert periodic.run_due(runtime, clock.now()) == ["t.hourly"]
    assert periodic.run_due(runtime, clock.now()) == []
    assert jobs.count("hourly") == 2


def test_force_runs_every_job_whatever_was_recorded(runtime, jobs):
    periodic.run_due(runtime, clock.now())
    restart(runtime)
    assert periodic.run_due(runtime, clock.now(), force=True) == ["t.hourly"]
    assert jobs == ["hourly", "broken", "hourly", "broken"]


def test_a_scheduler_started_just_after_boot_runs_every_job(runtime, jobs, monkeypatch):
    """time.monotonic() counts from the machine's boot: ten minutes after a reboot it reads 600,
    and a job that has never run in the process is due all the same."""
    monkeypatch.setattr(periodic.time, "monotonic", lambda: 600.0)
    assert periodic.run_due(runtime, clock.now()) == ["t.hourly"]
    assert jobs == ["hourly", "broken"]
    assert periodic.run_due(runtime, clock.now()) == [] and len(jobs) == 2  # and not again until due
