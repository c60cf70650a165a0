"""Events: bulk, idempotent on the client's id; unknown contacts are created bare."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.ingest.batch import ItemError
from kaskad.ingest.contacts import ExternalId, ensure_contacts
from kaskad.store.dialect import insert_for
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
    stmt = insert_for(session, Event).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(Event.id)
    return len(session.scalars(stmt, unique).all())
