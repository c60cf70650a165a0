"""Events meet journeys: entries, goals and event waits, in batches read back from the database.

The API stores events with ``dispatched_at`` NULL; the scheduler calls
:func:`dispatch_events`, which takes a batch (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL), and in the same transaction

1. ends runs whose flow's goal the event meets (status ``converted``),
2. wakes runs waiting at a wait node for that event (they leave by ``next``),
3. enrolls contacts into flows that an event starts (dedupe on the entry's key),

then marks the events dispatched. A crash before the commit leaves the events
undispatched and the whole batch is done again, once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from kaskad.engine.enroll import IN_PROGRESS, enroll_plan
from kaskad.engine.handlers import WAIT_MARK
from kaskad.engine.match import MISSING, matches, resolve
from kaskad.engine.plan import FlowPlan, plan_for_version, published_plans
from kaskad.flow import model
from kaskad.flow.durations import parse_duration
from kaskad.store.bulk import among
from kaskad.store.engine import transaction
from kaskad.store.models import Event, JourneyRun, RunStep


def _matches(where: dict | None, properties: dict) -> bool:
    return matches(where, properties or {})


def _path(event: Any, path: str) -> Any:
    """The event's ``name``, or the property at ``path`` (``properties.`` optional); None when missing."""
    if path == "name":
        return event.name
    value = resolve(event.properties or {}, path)
    return None if value is MISSING else value


def _event_doc(e: Any) -> dict:
    return {"id": e.id, "name": e.name, "properties": e.properties or {}, "time": e.occurred_at.isoformat()}


#: Events taken per dispatch transaction.
DISPATCH_BATCH = 5000


def dispatch_events(runtime: Any, now: datetime, limit: int = DISPATCH_BATCH) -> int:
    """Dispatch one batch of undispatched events; returns how many."""
    with transaction(runtime.sessions) as session:
        q = (select(Event.id, Event.contact_id, Event.name, Event.occurred_at, Event.properties)
             .where(Event.dispatched_at.is_(None)).order_by(Event.id).limit(limit))
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        events = session.execute(q).all()
        if not events:
            return 0
        plans = published_plans(session)
        _goals(session, plans, events, now)
        _event_waits(session, events, now)
        _entries(session, plans, events, now)
        t = Event.__table__  # Core, not ORM: nothing in the session to synchronise
        session.execute(update(t).where(among(session, t.c.id, [e.id for e in events])).values(dispatched_at=now))
        return len(events)


def _goals(session: Session, plans: list[FlowPlan], events: list, now: datetime) -> None:
    for plan in plans:
        goal = plan.flow.goal
        if goal is None:
            continue
        hits = [e for e in events if e.name == goal.event and _matches(goal.where, e.properties)]
        if not hits:
            continue
        by_contact = defaultdict(list)
        for e in hits:
            by_contact[e.contact_id].append(e)
        q = select(JourneyRun.id, JourneyRun.contact_id, JourneyRun.entered_at, JourneyRun.context, JourneyRun.node_id,
                   JourneyRun.flow_version_id).where(
            JourneyRun.flow_id == plan.flow_id, among(session, JourneyRun.contact_id, list(by_contact)),
            JourneyRun.status.in_(IN_PROGRESS))
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        within = parse_duration(goal.within) if goal.within else None
        params, steps = [], []
        for run in session.execute(q):
            for e in sorted(by_contact[run.contact_id], key=lambda e: e.occurred_at):
                if e.occurred_at < run.entered_at:
                    continue
                if within is not None and e.occurred_at > within.add_to(run.entered_at):
                    continue
                ctx = dict(run.context or {})
                ctx.update(converted_at=e.occurred_at.isoformat(), goal_event_id=e.id)
                params.append({"rid": run.id, "ctx": ctx, "fin": now})
                steps.append({"run_id": run.id, "flow_version_id": run.flow_version_id, "node_id": run.node_id,
                              "port": None, "outcome": "exited", "detail": f"goal {goal.event!r} reached", "at": now})
                break
        if params:
            t = JourneyRun.__table__
            session.execute(
                update(t).where(t.c.id == bindparam("rid"), t.c.status.in_(IN_PROGRESS))
                .values(status="converted", context=bindparam("ctx"), finished_at=bindparam("fin"), wake_at=None,
                        claim=None),
                params,
            )
            session.execute(insert(RunStep), steps)


def _event_waits(session: Session, events: list, now: datetime) -> None:
    by_contact = defaultdict(list)
    for e in events:
        by_contact[e.contact_id].append(e)
    q = select(JourneyRun.id, JourneyRun.contact_id, JourneyRun.flow_version_id, JourneyRun.node_id,
               JourneyRun.context).where(among(session, JourneyRun.contact_id, list(by_contact)),
                                                 JourneyRun.status == "waiting")
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    params = []
    for run in session.execute(q):
        mark = (run.context or {}).get(WAIT_MARK)
        if not mark or mark.get("node") != run.node_id:
            continue
        node = plan_for_version(session, run.flow_version_id).node(run.node_id)
        if not isinstance(node, model.WaitNode) or node.until_event is None:
            continue
        since = datetime.fromisoformat(mark["since"])
        for e in by_contact[run.contact_id]:
            if e.name == node.until_event.event and e.occurred_at >= since and _matches(node.until_event.where, e.properties):
                ctx = dict(run.context)
                ctx["wake_port"] = "next"
                ctx["wake_event"] = _event_doc(e)
                params.append({"rid": run.id, "ctx": ctx, "wake": now})
                break
    if params:
        t = JourneyRun.__table__
        session.execute(
            update(t).where(t.c.id == bindparam("rid"), t.c.status == "waiting")
            .values(status="active", context=bindparam("ctx"), wake_at=bindparam("wake")),
            params,
        )


def _entries(session: Session, plans: list[FlowPlan], events: list, now: datetime) -> None:
    for plan in plans:
        entry = plan.flow.entry
        if not isinstance(entry, model.EventEntry):
            continue
        hits = [e for e in events if e.name == entry.event and _matches(entry.where, e.properties)]
        if not hits:
            continue
        keys = []
        for e in hits:
            value = _path(e, entry.dedupe) if entry.dedupe else None
            keys.append(f"e:{value}" if value is not None else None)
        enroll_plan(session, plan, [e.contact_id for e in hits], dedupe_keys=keys, now=now,
                    context=[{"event": _event_doc(e)} for e in hits])
