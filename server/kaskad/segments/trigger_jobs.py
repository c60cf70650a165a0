"""Start journeys: for each time-based entry kind, find the published flows with it, detect who is due,
and enroll them through the engine (``kaskad.engine.enroll.enroll``) in the same transaction.

Segment entries: ``on: enter`` / ``exit`` follow the ``segment_entered`` / ``segment_exited``
events that membership tracking writes (a cursor over them); ``publish`` enrolls the
members once per published version; ``schedule`` enrolls them at each cron fire time
(UTC; a missed fire is caught up once, older ones are not replayed). State that says
"done" advances only after the engine accepted the enrollment, so nothing is skipped
while the engine is missing or failing.
"""

from __future__ import annotations

import logging
from datetime import datetime, time
from typing import Any, Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaskad import segments
from kaskad.flow import model
from kaskad.flow.durations import parse_duration
from kaskad.flow.validate import decode_stored
from kaskad.segments import dates, inactivity, membership, triggers
from kaskad.segments.membership import _state
from kaskad.store.models import Event, Flow, FlowVersion

log = logging.getLogger(__name__)
_decoded: dict[str, model.Flow] = {}


class EngineMissing(RuntimeError):
    """``kaskad.engine.enroll`` is not installed yet: detection ran, nobody was enrolled."""


def published(session: Session, entry_type: type) -> list[tuple[str, FlowVersion, Any]]:
    """(flow key, current version row, entry) of every published flow whose entry is an ``entry_type``."""
    q = select(Flow.key, FlowVersion).join(FlowVersion, (FlowVersion.flow_id == Flow.id) & (FlowVersion.version == Flow.current_version))
    out = []
    for key, v in session.execute(q):
        if v.document not in _decoded:  # keyed by the text: ids are per database, documents are what they are
            try:
                _decoded[v.document] = decode_stored(v.document)
            except Exception:  # noqa: BLE001 - a version that no longer decodes enrolls nobody
                log.exception("published flow %s version %s does not decode", key, v.version)
                continue
        entry = _decoded[v.document].entry
        if isinstance(entry, entry_type):
            out.append((key, v, entry))
    return out


def enroll(session: Session, runtime, flow_key: str, contact_ids: Sequence[int], keys: Sequence[str | None], now: datetime,
           context: Sequence[dict] | None = None) -> int:
    """Hand contacts to the engine; returns how many it enrolled. Raises :class:`EngineMissing` without the engine."""
    if not contact_ids:
        return 0
    try:
        from kaskad.engine.enroll import enroll as engine_enroll
    except ImportError as exc:
        raise EngineMissing("kaskad.engine.enroll is not available; triggers detect but cannot enroll") from exc
    kw = {"dedupe_keys": list(keys), "now": now}
    if context is not None:
        kw["context"] = list(context)
    return engine_enroll(session, runtime, flow_key, list(contact_ids), **kw).enrolled


def _days(duration: str) -> int:
    """Whole days of a date offset such as ``-P3D`` (a date trigger moves by days)."""
    return round(parse_duration(duration).approx().total_seconds() / 86400)


def date_flows(session: Session, runtime, now: datetime) -> int:
    n = 0
    for key, _, e in published(session, model.DateEntry):
        hh, mm = map(int, e.at.split(":"))
        due = dates.date_due(session, e.attribute, _days(e.offset), now, at=time(hh, mm), yearly=e.yearly)
        n += enroll(session, runtime, key, [c for c, _ in due], [k for _, k in due], now)
    return n


def inactivity_flows(session: Session, runtime, now: datetime) -> int:
    n = 0
    for key, _, e in published(session, model.InactivityEntry):
        due = inactivity.inactive_due(session, e.days, now)
        n += enroll(session, runtime, key, [c for c, _ in due], [k for _, k in due], now)
    return n


def abandoned_cart_flows(session: Session, runtime, now: datetime) -> int:
    n = 0
    for key, _, e in published(session, model.AbandonedCartEntry):
        ids, keys = triggers.abandoned_carts(session, now, after=parse_duration(e.after).approx(), event=e.event,
                                             order_event=e.order_event)
        n += enroll(session, runtime, key, ids, keys, now)
    return n


def replenishment_flows(session: Session, runtime, now: datetime) -> int:
    n = 0
    for key, _, e in published(session, model.ReplenishmentEntry):
        ids, keys, ctx = triggers.replenishment_due(session, now, lead=parse_duration(e.lead).approx(), sku=e.sku,
                                                    min_purchases=e.min_purchases)
        n += enroll(session, runtime, key, ids, keys, now, ctx)
    return n


def _all_members(session: Session, segment: str, now: datetime) -> list[int]:
    out, cursor = [], 0
    while True:
        page = segments.members(session, segment, cursor=cursor, limit=10000, now=now)
        out += page
        if len(page) < 10000:
            return out
        cursor = page[-1]


def segment_publish_flows(session: Session, runtime, now: datetime) -> int:
    """``on: publish``: the segment's members, once per published version."""
    n = 0
    for key, v, e in published(session, model.SegmentEntry):
        if e.on != "publish":
            continue
        state = _state(session, f"trigger:publish:{key}:{v.version}")
        if state.at is not None:
            continue
        ids = _all_members(session, e.segment, now)
        n += enroll(session, runtime, key, ids, [f"publish:{v.version}"] * len(ids), now)
        state.at = now
    return n


def segment_schedule_flows(session: Session, runtime, now: datetime) -> int:
    """``on: schedule``: the segment's members at each cron fire time after the version was published."""
    n = 0
    for key, v, e in published(session, model.SegmentEntry):
        if e.on != "schedule" or not e.schedule:
            continue
        state = _state(session, f"trigger:schedule:{key}")
        fire = triggers.cron_due(e.schedule, max(filter(None, [state.at, v.published_at])), now)
        if fire is None:
            continue
        ids = _all_members(session, e.segment, now)
        n += enroll(session, runtime, key, ids, [f"schedule:{fire.isoformat()}"] * len(ids), now)
        state.at = fire
    return n


def segment_move_flows(session: Session, runtime, now: datetime) -> int:
    """``on: enter`` / ``exit``: follow the membership events after a cursor."""
    flows = [(key, e) for key, _, e in published(session, model.SegmentEntry) if e.on in ("enter", "exit")]
    cursor = _state(session, "trigger:segment_moves")
    rows = session.execute(
        select(Event.id, Event.contact_id, Event.name, Event.properties)
        .where(Event.id > (cursor.number or 0), Event.name.in_((membership.ENTERED, membership.EXITED)))
        .order_by(Event.id).limit(membership.BATCH)
    ).all()
    n = 0
    for key, e in flows:
        name = membership.ENTERED if e.on == "enter" else membership.EXITED
        hits = [r for r in rows if r.name == name and (r.properties or {}).get("segment") == e.segment]
        n += enroll(session, runtime, key, [r.contact_id for r in hits], [f"segment:{e.segment}:{e.on}:{r.id}" for r in hits], now)
    if rows:
        cursor.number = rows[-1].id
    return n


#: entry kind -> (detection + enrollment, seconds between runs)
KINDS: dict[str, tuple[Callable[[Session, Any, datetime], int], int]] = {
    "date": (date_flows, 300),
    "inactivity": (inactivity_flows, 3600),
    "abandoned_cart": (abandoned_cart_flows, 60),
    "replenishment": (replenishment_flows, 3600),
    "segment_publish": (segment_publish_flows, 30),
    "segment_schedule": (segment_schedule_flows, 30),
    "segment_moves": (segment_move_flows, 15),
}
