"""Putting contacts into a flow: one set-based insert per chunk, re-entry policy enforced.

Dedupe keys live in ``journey_runs.dedupe_key`` under a unique index on
``(flow_id, dedupe_key)``, always prefixed with the contact id so two contacts
never collide:

- policy ``once``: ``"<contact>:once"`` — the index itself makes a second entry a no-op;
- a trigger's own key (an event's cart id, a birthday's year): ``"<contact>:<key>"``;
- policy ``after``: no run in progress and none entered within the cooldown. Two
  enrollments racing for the same contact are serialised by a per-flow advisory
  lock on PostgreSQL; SQLite has one writer at a time anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.engine.counts import add_counts
from kaskad.engine.plan import FlowPlan, current_plan
from kaskad.flow.durations import parse_duration
from kaskad.store.bulk import among, bulk_insert
from kaskad.store.models import Contact, JourneyRun

IN_PROGRESS = ("active", "waiting", "claimed")
CHUNK = 5000


class FlowNotLive(LookupError):
    """The flow does not exist or has no published version."""


@dataclass
class EnrollResult:
    enrolled: int = 0
    skipped: int = 0

    def __iadd__(self, other: "EnrollResult") -> "EnrollResult":
        self.enrolled += other.enrolled
        self.skipped += other.skipped
        return self


def enroll(
    session: Session,
    runtime: Any,
    flow_key: str,
    contact_ids: Sequence[int],
    *,
    dedupe_keys: Sequence[str | None] | None = None,
    now: datetime | None = None,
    context: Sequence[dict] | None = None,
) -> EnrollResult:
    """Enroll contacts into the flow's current published version, inside the caller's transaction.

    Runs start ``active`` on the flow's start node and are picked up by the
    scheduler on its next tick. Returns how many entered and how many were
    refused (re-entry policy, dedupe key already used, erased or unknown contact).
    """
    plan = current_plan(session, flow_key)
    if plan is None:
        raise FlowNotLive(f"flow {flow_key!r} does not exist or has no published version")
    return enroll_plan(session, plan, contact_ids, dedupe_keys=dedupe_keys, now=now, context=context)


def enroll_plan(
    session: Session,
    plan: FlowPlan,
    contact_ids: Sequence[int],
    *,
    dedupe_keys: Sequence[str | None] | None = None,
    now: datetime | None = None,
    context: Sequence[dict] | None = None,
) -> EnrollResult:
    now = now or clock.now()
    result = EnrollResult()
    ids = list(contact_ids)
    for start in range(0, len(ids), CHUNK):
        end = start + CHUNK
        result += _enroll_chunk(
            session, plan, ids[start:end],
            list(dedupe_keys[start:end]) if dedupe_keys is not None else [None] * len(ids[start:end]),
            list(context[start:end]) if context is not None else [None] * len(ids[start:end]),
            now,
        )
    return result


def enroll_all(session_factory, plan_key: str, now: datetime | None = None, chunk: int = 20_000) -> EnrollResult:
    """Enroll every contact (not erased), a chunk per transaction, paging by id."""
    from kaskad.store.engine import transaction

    result, after = EnrollResult(), 0
    while True:
        with transaction(session_factory) as session:
            plan = current_plan(session, plan_key)
            if plan is None:
                raise FlowNotLive(f"flow {plan_key!r} does not exist or has no published version")
            ids = session.scalars(
                select(Contact.id).where(Contact.id > after, Contact.erased_at.is_(None)).order_by(Contact.id).limit(chunk)
            ).all()
            if not ids:
                return result
            result += enroll_plan(session, plan, ids, now=now)
            after = ids[-1]


def _enroll_chunk(session: Session, plan: FlowPlan, ids: list[int], keys: list[str | None],
                  contexts: list[dict | None], now: datetime) -> EnrollResult:
    reentry = plan.flow.reentry
    policy = reentry.policy if reentry is not None else "once"
    live = set(session.scalars(select(Contact.id).where(among(session, Contact.id, set(ids)), Contact.erased_at.is_(None))))
    blocked: set[int] = set()
    if policy == "after":
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:k, :f)"), {"k": 0x4B534B, "f": plan.flow_id})
        # The cooldown counts back from now: entered after ``now - cooldown`` blocks.
        cooldown = parse_duration(reentry.cooldown or "P0D")
        cutoff = now - (cooldown.approx() if cooldown.months else cooldown.delta)
        blocked = set(session.scalars(
            select(JourneyRun.contact_id).where(
                JourneyRun.flow_id == plan.flow_id,
                among(session, JourneyRun.contact_id, live),
                (JourneyRun.status.in_(IN_PROGRESS)) | (JourneyRun.entered_at > cutoff),
            )
        ))
    rows: list[dict] = []
    seen: set[Any] = set()
    for cid, key, ctx in zip(ids, keys, contexts):
        if cid not in live or cid in blocked:
            continue
        if policy == "once":
            dedupe = f"{cid}:once"
        elif key is not None:
            dedupe = f"{cid}:{key}"
        else:
            dedupe = None
        marker = dedupe if dedupe is not None else (cid if policy == "after" else None)
        if marker is not None:
            if marker in seen:
                continue
            seen.add(marker)
        rows.append({
            "flow_id": plan.flow_id, "flow_version_id": plan.version_id, "contact_id": cid, "node_id": plan.start,
            "status": "active", "wake_at": now, "entered_at": now, "attempts": 0, "dedupe_key": dedupe,
            "context": ctx or {},
        })
    if not rows:
        return EnrollResult(enrolled=0, skipped=len(ids))
    inserted = len(bulk_insert(session, JourneyRun.__table__, rows, on_conflict_nothing=True, returning=["id"]))
    if inserted:
        add_counts(session, [(plan.version_id, plan.start, "@entered", inserted)], now)
    return EnrollResult(enrolled=inserted, skipped=len(ids) - inserted)
