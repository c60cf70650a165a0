"""Who is in which segment, kept in ``segment_memberships``; entering and leaving become events.

A contact entering a segment gets a ``segment_entered`` event, leaving one a
``segment_exited`` event (properties ``{"segment": key}``), written to the
``events`` table like any other event, so the engine's dispatcher starts
journeys with a segment entry and moves branches on them.

Two passes keep memberships current, never a scan per event:

- :func:`incremental_pass` evaluates only the contacts touched since the last
  pass: contacts with new events (orders write ``order_*`` events too) after an
  event-id cursor, and contacts whose record changed (``contacts.updated_at``).
  The cursor trails by :data:`SETTLE` so an event whose transaction commits late
  (ids are handed out before commit) is still seen; re-evaluating is harmless.
- :func:`full_pass` re-evaluates a whole segment with two set-based statements,
  for conditions that change with time alone ("no order for 90 days").

The first pass over a segment records its members silently: a new segment's
existing population has not *entered* it, and must not flood journeys that
start on entry.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable

from sqlalchemy import delete, exists, literal, select
from sqlalchemy.orm import Session

from kaskad import segments
from kaskad.ingest.events import insert_events
from kaskad.segments.definitions import Definitions
from kaskad.segments.models import SegmentMembership, SegmentsState
from kaskad.store.dialect import insert_for
from kaskad.store.models import Contact, Event

ENTERED, EXITED = "segment_entered", "segment_exited"
#: How far the incremental cursor trails behind the newest event.
SETTLE = timedelta(seconds=30)
#: Most events read by one incremental pass (the next pass continues).
BATCH = 20000
_CURSOR = "membership:events"
_CONTACTS = "membership:contacts"


def _state(session: Session, name: str) -> SegmentsState:
    row = session.get(SegmentsState, name, with_for_update=session.get_bind().dialect.name == "postgresql")
    if row is None:
        session.execute(insert_for(session, SegmentsState).on_conflict_do_nothing(index_elements=["name"]), [{"name": name}])
        row = session.get(SegmentsState, name, with_for_update=session.get_bind().dialect.name == "postgresql")
    return row


def _emit(session: Session, key: str, name: str, contact_ids: Iterable[int], now: datetime) -> int:
    rows = [{"contact_id": cid, "name": name, "occurred_at": now, "properties": {"segment": key},
             "idempotency_key": f"segment:{key}:{name}:{cid}:{now.isoformat()}", "received_at": now}
            for cid in contact_ids]
    return insert_events(session, rows)


def _baselined(session: Session, key: str, now: datetime | None = None) -> bool:
    """Whether ``key`` has had its silent first full pass; with ``now``, mark that it has one now."""
    row = _state(session, f"membership:baseline:{key}")
    done = row.at is not None
    if not done and now is not None:
        row.at = now
    return done


def apply(session: Session, key: str, evaluated: Iterable[int], members: set[int], now: datetime) -> tuple[list[int], list[int]]:
    """Record that of ``evaluated`` contacts exactly ``members`` are in segment ``key``; returns (entered, exited)."""
    ids = sorted(set(evaluated))
    if not _baselined(session, key):
        return [], []  # the first full pass records the population; until then nothing enters or exits
    entered: list[int] = []
    exited: list[int] = []
    for i in range(0, len(ids), 5000):
        chunk = ids[i : i + 5000]
        had = set(session.scalars(select(SegmentMembership.contact_id).where(
            SegmentMembership.segment == key, SegmentMembership.contact_id.in_(chunk))))
        now_in = members.intersection(chunk)
        entered += sorted(now_in - had)
        exited += sorted(had - now_in)
    if entered:
        session.execute(insert_for(session, SegmentMembership).on_conflict_do_nothing(),
                        [{"segment": key, "contact_id": c, "entered_at": now} for c in entered])
    for i in range(0, len(exited), 5000):
        session.execute(delete(SegmentMembership).where(
            SegmentMembership.segment == key, SegmentMembership.contact_id.in_(exited[i : i + 5000])))
    _emit(session, key, ENTERED, entered, now)
    _emit(session, key, EXITED, exited, now)
    return entered, exited


def full_pass(session: Session, key: str, now: datetime) -> tuple[int, int]:
    """Re-evaluate every contact for ``key`` in two set-based statements; returns (entered, exited)."""
    loud = _baselined(session, key, now)
    compiled = segments._compiled(session, key, now)
    q = compiled.select().subquery()
    # Every current member is inserted; the primary key skips those already in and RETURNING names
    # the new ones. (An anti-join against the table being filled was planned as a nested loop over
    # a table the statistics called empty: quadratic, minutes for 300,000 members.)
    # (SQLite reads ON CONFLICT after INSERT … SELECT only when the SELECT has a WHERE clause.)
    ins = insert_for(session, SegmentMembership).from_select(
        ["segment", "contact_id", "entered_at"],
        select(literal(key), q.c.id, literal(now, SegmentMembership.entered_at.type)).where(q.c.id.is_not(None)),
    ).on_conflict_do_nothing().returning(SegmentMembership.contact_id)
    entered = list(session.scalars(ins))
    # NOT EXISTS over the segment's rows computed once (a hash anti-join), not a segment query per
    # member, and not NOT IN: PostgreSQL hashes NOT IN only while it fits in work_mem.
    still = exists().where(q.c.id == SegmentMembership.contact_id)
    gone = delete(SegmentMembership).where(SegmentMembership.segment == key, ~still).returning(SegmentMembership.contact_id)
    exited = list(session.scalars(gone))
    if loud:
        _emit(session, key, ENTERED, entered, now)
        _emit(session, key, EXITED, exited, now)
    return len(entered), len(exited)


def touched_since_cursor(session: Session, now: datetime) -> tuple[set[int], int]:
    """Contacts with events after the cursor or a changed record; returns them and how many events were read."""
    cursor = _state(session, _CURSOR)
    after = cursor.number or 0
    rows = session.execute(
        select(Event.id, Event.contact_id, Event.received_at)
        .where(Event.id > after, Event.name.not_in((ENTERED, EXITED)))
        .order_by(Event.id).limit(BATCH)
    ).all()
    touched = {r.contact_id for r in rows}
    # advance over the events that have settled; later ones are read again next time
    settled = [r.id for r in rows if r.received_at <= now - SETTLE]
    if len(rows) == BATCH:
        settled = [r.id for r in rows]
    if settled:
        cursor.number = max(settled)
    contacts = _state(session, _CONTACTS)
    since = contacts.at or now - SETTLE
    touched.update(session.scalars(select(Contact.id).where(Contact.updated_at > since - SETTLE, Contact.updated_at <= now)))
    contacts.at = now
    return touched, len(rows)


def incremental_pass(session: Session, now: datetime) -> dict[str, tuple[int, int]]:
    """Evaluate the contacts touched since the last pass against every segment; returns key -> (entered, exited)."""
    touched, _ = touched_since_cursor(session, now)
    out = {}
    if not touched:
        return out
    for key in Definitions(session).keys():
        if not _baselined(session, key):
            continue  # waits for its first full pass
        members = segments.members_among(session, key, touched, now=now)
        entered, exited = apply(session, key, touched, members, now)
        out[key] = (len(entered), len(exited))
    return out


def full_passes(session: Session, now: datetime) -> dict[str, tuple[int, int]]:
    """A full pass over every segment (the time-based re-evaluation)."""
    return {key: full_pass(session, key, now) for key in Definitions(session).keys()}


def members_of(session: Session, key: str) -> set[int]:
    return set(session.scalars(select(SegmentMembership.contact_id).where(SegmentMembership.segment == key)))


__all__ = ["apply", "full_pass", "full_passes", "incremental_pass", "members_of", "ENTERED", "EXITED"]
