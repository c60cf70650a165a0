"""The periodic jobs: registered with kaskad.periodic, idempotent, the recent rebuild covers the
longest goal window."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from kaskad import periodic
from kaskad.analytics import jobs
from kaskad.analytics.attribution import AttributionRules
from kaskad.analytics.models import BasePeriod, FlowDay, NodeDay, Refresh
from kaskad.store.engine import transaction

from .data import Data, at
from .test_base_health import build_base
from .test_journeys import build_cascade


def _counts(runtime):
    with runtime.sessions() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (FlowDay, NodeDay, BasePeriod, Refresh))


def test_scheduler_runs_the_analytics_jobs_and_twice_is_the_same(runtime):
    assert {"analytics.recent", "analytics.base", "analytics.full"} <= set(periodic.load_jobs())
    with transaction(runtime.sessions) as s:
        build_cascade(s)
        build_base(s)
    ran = periodic.run_due(runtime, at(3), force=True)
    assert {"analytics.recent", "analytics.base", "analytics.full"} <= set(ran)
    first = _counts(runtime)
    assert all(first), first
    periodic.run_due(runtime, at(3), force=True)
    assert _counts(runtime) == first


def test_recent_window_follows_the_longest_goal(runtime):
    rules = AttributionRules()
    with transaction(runtime.sessions) as s:
        d = Data(s)
        d.flow("short", goal={"event": "order_paid", "within": "P3D"})
        assert jobs.recent_since(s, at(0), rules) == date(2026, 2, 21)  # the default 7 days + 2
        d.flow("long", goal={"event": "order_paid", "within": "P30D"})
        assert jobs.recent_since(s, at(0), rules) == date(2026, 1, 29)  # 30 days + 2 before 03-02 10:00
