"""Events: bulk, idempotent on the client's id; unknown contacts are created bare."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.engine.wake import notify_new_events
from kaskad.ingest.batch import ItemError
from kaskad.ingest.contacts import ExternalId, ensure_contacts
from kaskad.store.dialect import driver_cursor, insert_for
from kaskad.store.models import Event

#: How far in the future an event's time may be (clock skew between systems).
MAX_SKEW = timedelta(minutes=5)

EventName = Annotated[str, Meta(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class EventIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    contact: ExternalId
    name: EventName
    time: Annotated[datetime, Meta(tz=True)] | None = None
    properties: dict[str, Any] = {}
    id: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


def store_events(session: Session, items: list[tuple[int, EventIn]]) -> tuple[int, int, list[ItemError]]:
    """Returns (stored, duplicates, errors)."""
    now = clock.now()
    errors: list[ItemError] = []
    valid = []
    for index, item in items:
        if item.time is not None and item.time > now + MAX_SKEW:
            errors.append(ItemError(index=index, field="time", message=f"{item.time.isoformat()} is in the future"))
        else:
            valid.append(item)
    if not valid:
        return 0, 0, errors
    ids = ensure_contacts(session, [e.contact for e in valid])
    rows = [
        {
            "contact_id": ids[e.contact],
            "name": e.name,
            "occurred_at": e.time or now,
            "properties": e.properties,
            "idempotency_key": e.id,
            "received_at": now,
        }
        for e in valid
    ]
    stored = insert_events(session, rows)
    return stored, len(rows) - stored, errors


def insert_events(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert event rows, skipping those whose idempotency key is already stored. Returns how many were new."""
    if not rows:
        return 0
    # Repeats inside one batch: keep the first.
    seen: set[str] = set()
    unique = []
    for r in rows:
        key = r.get("idempotency_key")
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        unique.append(r)
    if session.get_bind().dialect.name == "postgresql":
        stored = _insert_events_pg(session, unique)
        if stored:
            notify_new_events(session)
        return stored
    stmt = insert_for(session, Event).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(Event.id)
    return len(session.scalars(stmt, unique).all())


# One short statement with array parameters, sent in binary: PostgreSQL unnests
# them into rows. A multi-row VALUES list of 1,000 rows is a 6,000-placeholder
# query the driver parses again for every batch; this is several times faster.
_PG_INSERT = """
    INSERT INTO events (contact_id, name, occurred_at, properties, idempotency_key, received_at)
    SELECT c, n, o, p::jsonb, k, r FROM unnest(
        %s::bigint[], %s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::timestamptz[]) AS t(c, n, o, p, k, r)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id
"""


def _insert_events_pg(session: Session, rows: list[dict[str, Any]]) -> int:
    enc = msgspec.json.encode
    params = (
        [r["contact_id"] for r in rows],
        [r["name"] for r in rows],
        [r["occurred_at"] for r in rows],
        [enc(r.get("properties") or {}).decode() for r in rows],
        [r.get("idempotency_key") for r in rows],
        [r.get("received_at") for r in rows],
    )
    with driver_cursor(session) as cur:
        cur.execute(_PG_INSERT, params, binary=True)
        return len(cur.fetchall())
