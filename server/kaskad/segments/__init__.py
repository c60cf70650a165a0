"""Segments: who is in a group of contacts, as one SQL query per segment.

Definitions are :class:`kaskad.segments.model.Segment` documents, stored and
versioned in the database (:mod:`kaskad.segments.definitions`), registered in
process with :func:`define` (tests, plugins), or shipped in ``flows/segments/``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.segments.compile import SegmentError, compile_segment
from kaskad.segments.definitions import DEFINED, Definitions, shipped
from kaskad.segments.model import Segment, decode
from kaskad.store.models import Contact

__all__ = ["Segment", "SegmentError", "define", "get", "count", "members_among", "members", "explain", "decode", "Definitions"]


def define(segment: Segment) -> Segment:
    """Register a definition in process (compiling it first, so a bad one changes nothing)."""
    resolve = lambda k: segment if k == segment.key else (DEFINED.get(k) or shipped()[k])  # noqa: E731
    compile_segment(segment, now=clock.now(), resolve=resolve)  # raises SegmentError
    DEFINED[segment.key] = segment
    return segment


def get(key: str, session: Session | None = None) -> Segment:
    """The current definition of ``key`` (KeyError when there is none). Without a session only
    in-process and shipped definitions are seen; pass one to see stored definitions too."""
    if session is not None:
        return Definitions(session).get(key)
    if key in DEFINED:
        return DEFINED[key]
    return shipped()[key]


#: Per-query memory for a whole-base segment query on PostgreSQL: the per-contact
#: aggregates of a windowed condition hash a few hundred thousand groups, which spill
#: to disk at PostgreSQL's default 4MB (measured: 21 batches, a third slower).
WORK_MEM = "64MB"


def _compiled(session: Session, key: str, now: datetime | None, among=None):
    defs = Definitions(session)
    try:
        segment = defs.get(key)
    except KeyError:
        raise KeyError(f"no segment {key!r}") from None
    compiled = compile_segment(segment, now=now or clock.now(), resolve=defs.get,
                               dialect=session.get_bind().dialect.name, among=among)
    if among is None and session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))  # this transaction only
        if compiled.grouped:
            # A parallel plan scans contacts in parallel but has every worker build the
            # whole per-contact GROUP BY again as its side of the hash join (measured
            # at 1M contacts / 10M orders: 1.9 s of CPU against 1.0 s serial, and no
            # faster on two cores). Lifetime conditions read stored summaries and keep
            # their parallel plans.
            session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    return compiled


def count(session: Session, segment_key: str, *, now=None) -> int:
    q = _compiled(session, segment_key, now).select().subquery()
    return session.execute(select(func.count()).select_from(q)).scalar_one()


def members_among(session: Session, segment_key: str, contact_ids: Iterable[int], *, now=None) -> set[int]:
    """Which of ``contact_ids`` are in the segment: the segment's query restricted to those ids
    (the restriction reaches into every aggregate, so this reads only their rows)."""
    ids = sorted(set(contact_ids))
    found: set[int] = set()
    for i in range(0, len(ids), 5000):
        chunk = ids[i : i + 5000]
        q = _compiled(session, segment_key, now, among=chunk).select().where(Contact.id.in_(chunk))
        found.update(session.execute(q).scalars())
    return found


def members(session: Session, segment_key: str, *, cursor: int = 0, limit: int = 100, now=None) -> list[int]:
    """A page of member ids above ``cursor``, ascending (the last id is the next cursor)."""
    q = _compiled(session, segment_key, now).select().where(Contact.id > cursor).order_by(Contact.id).limit(limit)
    return list(session.execute(q).scalars())


def explain(session: Session, segment_key: str, contact_id: int, *, now=None) -> dict[str, Any]:
    """Why a contact is in or out: every node of the tree with its result and the value it read."""
    now = now or clock.now()
    c = _compiled(session, segment_key, now, among=[contact_id])
    cols = [Contact.id]
    for i, n in enumerate(c.nodes):
        cols.append(func.coalesce(n.truth, False).label(f"t{i}"))
        if n.value is not None:
            cols.append(n.value.label(f"v{i}"))
    row = session.execute(c.select(*cols, filtered=False).where(Contact.id == contact_id)).one_or_none()
    if row is None:
        raise KeyError(f"no contact {contact_id} (or erased)")
    got = row._mapping
    out = [
        {"path": n.path, "kind": n.kind, "result": bool(got[f"t{i}"]),
         "value": _plain(n, got[f"v{i}"], now) if n.value is not None else None}
        for i, n in enumerate(c.nodes)
    ]
    return {"segment": segment_key, "member": out[0]["result"], "conditions": out}


def _plain(node, value, now):
    if isinstance(value, datetime):  # the last order's time: also say how many days ago
        return {"at": value.isoformat(), "days_ago": round((now - value).total_seconds() / 86400, 2)}
    if node.kind in ("tag", "consent", "bought") and value is not None:
        return bool(value)
    if value is not None and not isinstance(value, (bool, int, float, str)):
        return float(value)  # Decimal spend
    return value
