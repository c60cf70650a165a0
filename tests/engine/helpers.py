"""Helpers for engine tests: publish a flow, add contacts, drive the engine."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec
from sqlalchemy import func, select

from kaskad.flow import service
from kaskad.store.engine import transaction
from kaskad.store.models import Consent, Contact, Event, JourneyRun, OutboxMessage

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday


def flow_doc(key: str, nodes: list[dict], entry: dict | None = None, **top: Any) -> dict:
    return {"schema": "kaskad.flow/1", "key": key, "name": key, "entry": entry or {"kind": "api"}, "nodes": nodes, **top}


def publish(runtime, doc: dict) -> int:
    with transaction(runtime.sessions) as s:
        res = service.save(s, runtime.registry, msgspec.json.encode(doc))
        assert res.valid, res.errors
        return service.publish(s, runtime.registry, doc["key"])


def add_contacts(runtime, n: int, prefix: str = "c", consent: tuple[str, ...] = (), **fields: Any) -> list[int]:
    with transaction(runtime.sessions) as s:
        rows = [Contact(external_id=f"{prefix}{i}", attributes={}, tags=[], **fields) for i in range(n)]
        s.add_all(rows)
        s.flush()
        for c in rows:
            for ch in consent:
                s.add(Consent(contact_id=c.id, channel=ch, topic="*", status="granted"))
        return [c.id for c in rows]


def add_event(runtime, contact_id: int, name: str, at: datetime, **properties: Any) -> None:
    with transaction(runtime.sessions) as s:
        s.add(Event(contact_id=contact_id, name=name, occurred_at=at, properties=properties))


def rows(runtime, model, **where: Any) -> list:
    """Rows of ``model`` whose columns equal ``where``, by id."""
    with runtime.sessions() as s:
        q = select(model).order_by(model.id)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return list(s.scalars(q))


def runs(runtime, **where: Any) -> list[JourneyRun]:
    return rows(runtime, JourneyRun, **where)


def statuses(runtime) -> dict[str, int]:
    with runtime.sessions() as s:
        return dict(s.execute(select(JourneyRun.status, func.count()).group_by(JourneyRun.status)).all())


def outbox(runtime, **where: Any) -> list[OutboxMessage]:
    return rows(runtime, OutboxMessage, **where)
