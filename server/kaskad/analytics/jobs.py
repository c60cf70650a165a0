"""Periodic rebuilds of the analytics tables (see :mod:`kaskad.periodic`).

- every 10 minutes: journey figures of runs that entered in the last
  ``max goal window + 2 days`` (older days only change through late refunds or
  late delivery reports);
- every hour: the base-health tables (whole-base scans of orders) and today's snapshot;
- once a day: every journey day from the start, which catches those late changes.

Each rebuild deletes and rewrites its rows in one transaction, so running it
twice, or being killed half-way, leaves correct figures.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaskad import periodic
from kaskad.analytics import base, flows
from kaskad.analytics.attribution import AttributionRules, goal_of
from kaskad.analytics.loyalty_cost import award_costs
from kaskad.analytics.models import Refresh
from kaskad.store.dialect import insert_for
from kaskad.store.engine import transaction
from kaskad.store.models import FlowVersion, JourneyRun

#: Days before the longest window that the frequent rebuild also covers (late reports).
LAG = timedelta(days=2)


def _mark(session: Session, part: str, now: datetime) -> None:
    stmt = insert_for(session, Refresh.__table__).values(part=part, at=now)
    session.execute(stmt.on_conflict_do_update(index_elements=["part"], set_={"at": now}))


def recent_since(session: Session, now: datetime, rules: AttributionRules) -> date:
    """The first day the frequent rebuild covers: the longest goal window of any flow, plus :data:`LAG`."""
    longest = timedelta(0)
    for (doc,) in session.execute(select(FlowVersion.document).where(FlowVersion.status != "draft")):
        longest = max(longest, goal_of(json.loads(doc), rules).window.approx())
    longest = max(longest, goal_of({}, rules).window.approx())
    return (now - longest - LAG).date()


def refresh_journeys(session: Session, now: datetime, since: date | None = None,
                     rules: AttributionRules | None = None) -> int:
    """Rebuild every flow's journey figures for runs entered on ``since`` or later (all when None)."""
    rules = rules or AttributionRules.from_env()
    costs = award_costs(session)
    runs = 0
    for (flow_id,) in session.execute(select(JourneyRun.flow_id).distinct()).all():
        runs += flows.refresh_flow(session, flow_id, since, rules, costs)
    _mark(session, "journeys" if since is None else "journeys_recent", now)
    return runs


def refresh_base(session: Session, now: datetime, churn_days: int = 180) -> None:
    """Rebuild the base-health tables and today's snapshot."""
    base.refresh_periods(session)
    base.refresh_cohorts(session)
    base.refresh_snapshot(session, now, churn_days)
    base.refresh_fatigue(session)
    _mark(session, "base", now)


def refresh_all(session: Session, now: datetime) -> None:
    """Everything from scratch (what ``kaskad`` runs daily; handy after an import)."""
    refresh_journeys(session, now)
    refresh_base(session, now)


@periodic.every(600, name="analytics.recent")
def recent(runtime, now: datetime) -> None:
    rules = AttributionRules.from_env()
    with transaction(runtime.sessions) as session:
        refresh_journeys(session, now, recent_since(session, now, rules), rules)


@periodic.every(3600, name="analytics.base")
def base_health(runtime, now: datetime) -> None:
    with transaction(runtime.sessions) as session:
        refresh_base(session, now)


@periodic.every(86_400, name="analytics.full")
def full(runtime, now: datetime) -> None:
    with transaction(runtime.sessions) as session:
        refresh_journeys(session, now)
