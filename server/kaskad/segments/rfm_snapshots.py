"""Dated RFM snapshots: the scores of every contact on a day, and movement between two days.

:func:`take` replaces the snapshot of ``now``'s UTC day in one INSERT … SELECT
(the named segment is computed in SQL from :data:`kaskad.segments.rfm.SEGMENT_RULES`),
so running it again the same day just refreshes that day. :func:`prune` keeps the
last ``keep_days`` daily snapshots and, before that, the one of each month's first day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, extract, func, literal, select, text
from sqlalchemy.orm import Session

from kaskad.segments import rfm
from kaskad.segments.models import RfmSnapshot

NONE = "(none)"  # not scored that day (no counted order yet, or erased)


def _named(r, f, m):
    return case(
        *[(and_(r.between(r0, r1), f.between(f0, f1), m >= m0), literal(name)) for name, r0, r1, f0, f1, m0 in rfm.SEGMENT_RULES],
        else_=literal("Lost"),
    )


def take(session: Session, now: datetime, *, thresholds: dict | None = None) -> int:
    """Score every contact now and store it as the snapshot of ``now``'s day; returns how many were scored."""
    day = now.date()
    if session.get_bind().dialect.name == "postgresql":
        # three sorts of a million rows each: in memory rather than merged on disk (measured: half the time)
        session.execute(text("SET LOCAL work_mem = '256MB'"))
    scores = rfm.scores_query(thresholds=thresholds, now=now).subquery()
    session.execute(delete(RfmSnapshot).where(RfmSnapshot.taken_on == day))
    src = select(literal(day).label("taken_on"), scores.c.contact_id, scores.c.r, scores.c.f, scores.c.m,
                 _named(scores.c.r, scores.c.f, scores.c.m).label("segment"))
    session.execute(RfmSnapshot.__table__.insert().from_select(["taken_on", "contact_id", "r", "f", "m", "segment"], src))
    return session.execute(select(func.count()).where(RfmSnapshot.taken_on == day)).scalar_one()


def prune(session: Session, today: date, keep_days: int = 90) -> None:
    session.execute(delete(RfmSnapshot).where(
        RfmSnapshot.taken_on < today - timedelta(days=keep_days), extract("day", RfmSnapshot.taken_on) != 1))


def days(session: Session) -> list[date]:
    return list(session.scalars(select(RfmSnapshot.taken_on).distinct().order_by(RfmSnapshot.taken_on)))


def latest(session: Session) -> date | None:
    return session.scalar(select(func.max(RfmSnapshot.taken_on)))


def distribution(session: Session, day: date) -> dict[str, int]:
    """Named segment → number of contacts on ``day``."""
    q = select(RfmSnapshot.segment, func.count()).where(RfmSnapshot.taken_on == day).group_by(RfmSnapshot.segment)
    return dict(session.execute(q).all())


def transitions(session: Session, before: date, after: date) -> dict[str, dict[str, int]]:
    """``matrix[from][to]`` = contacts in segment ``from`` on ``before`` and ``to`` on ``after``;
    ``(none)`` stands for not scored on that day (e.g. new customers appear from ``(none)``)."""
    a, b = RfmSnapshot.__table__.alias("a"), RfmSnapshot.__table__.alias("b")
    matrix: dict[str, dict[str, int]] = {}

    def add(frm, to, n):
        matrix.setdefault(frm, {})[to] = matrix.get(frm, {}).get(to, 0) + n

    both = (select(a.c.segment, func.coalesce(b.c.segment, NONE), func.count())
            .select_from(a.outerjoin(b, and_(b.c.contact_id == a.c.contact_id, b.c.taken_on == after)))
            .where(a.c.taken_on == before).group_by(a.c.segment, b.c.segment))
    for frm, to, n in session.execute(both):
        add(frm, to, n)
    new = (select(b.c.segment, func.count())
           .select_from(b.outerjoin(a, and_(a.c.contact_id == b.c.contact_id, a.c.taken_on == before)))
           .where(b.c.taken_on == after, a.c.contact_id.is_(None)).group_by(b.c.segment))
    for to, n in session.execute(new):
        add(NONE, to, n)
    return matrix


def summary(session: Session, day: date | None = None) -> dict[str, Any]:
    day = day or latest(session)
    dist = distribution(session, day) if day else {}
    return {"taken_on": day.isoformat() if day else None, "total": sum(dist.values()), "segments": dist,
            "snapshots": [d.isoformat() for d in days(session)]}
