"""Who is due to enter a journey now, for the time-based entry kinds: detection only.

Each function returns ``(contact_ids, dedupe_keys)`` (and, where useful, a
context per contact); :mod:`kaskad.segments.trigger_jobs` passes them to the
engine's ``enroll``. A dedupe key names the occurrence (the cart update, the
purchase cycle, the cron fire time), so running a detection twice, or in two
overlapping jobs, enrolls once.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

from croniter import croniter
from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from kaskad.segments.order_stats import COUNTED
from kaskad.store.models import Contact, Event, Order, OrderItem

#: How far back a detection looks for occurrences a missed job run would have caught.
LOOKBACK = timedelta(days=2)


def abandoned_carts(session: Session, now: datetime, *, after: timedelta, event: str = "cart_updated",
                    order_event: str = "order_placed", lookback: timedelta = LOOKBACK) -> tuple[list[int], list[str]]:
    """Contacts whose latest cart update is at least ``after`` old (and at most ``after + lookback``),
    with no order event since it. Key ``cart:<event id>``: once per cart update."""
    cart, later, order = Event, aliased(Event), aliased(Event)
    q = (
        select(cart.contact_id, cart.id)
        .join(Contact, Contact.id == cart.contact_id)
        .where(
            cart.name == event, cart.occurred_at <= now - after, cart.occurred_at > now - after - lookback,
            Contact.erased_at.is_(None),
            ~exists().where(order.contact_id == cart.contact_id, order.name == order_event, order.occurred_at >= cart.occurred_at),
            ~exists().where(later.contact_id == cart.contact_id, later.name == event, or_(
                later.occurred_at > cart.occurred_at, and_(later.occurred_at == cart.occurred_at, later.id > cart.id))),
        )
        .order_by(cart.contact_id)
    )
    rows = session.execute(q).all()
    return [r[0] for r in rows], [f"cart:{r[1]}" for r in rows]


def replenishment_due(session: Session, now: datetime, *, lead: timedelta, sku: str | None = None, min_purchases: int = 3,
                      horizon: timedelta = timedelta(days=365), lookback: timedelta = LOOKBACK
                      ) -> tuple[list[int], list[str], list[dict]]:
    """Contacts due a reminder for a SKU they bought in at least ``min_purchases`` orders: the next purchase is
    predicted as the last one plus the median of the contact's own intervals, and the reminder is due ``lead``
    before it (caught up for ``lookback``). Key ``replenish:<sku>:<last order id>``: once per purchase cycle.
    Only purchases within ``horizon`` are read."""
    q = (
        select(Order.contact_id, OrderItem.sku, Order.id, Order.placed_at)
        .join(OrderItem, OrderItem.order_id == Order.id)
        .join(Contact, Contact.id == Order.contact_id)
        .where(COUNTED, Order.placed_at >= now - horizon, Contact.erased_at.is_(None))
        .order_by(Order.contact_id, OrderItem.sku, Order.placed_at, Order.id)
    )
    if sku is not None:
        q = q.where(OrderItem.sku == sku)
    history: dict[tuple[int, str], list[tuple[datetime, int]]] = {}
    for cid, item_sku, oid, at in session.execute(q):
        buys = history.setdefault((cid, item_sku), [])
        if not buys or buys[-1][1] != oid:  # two lines of one order are one purchase
            buys.append((at, oid))
    ids, keys, context = [], [], []
    for (cid, item_sku), buys in history.items():
        if len(buys) < min_purchases:
            continue
        gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(buys, buys[1:])]
        interval = timedelta(seconds=statistics.median(gaps))
        if interval <= timedelta(0):
            continue
        last_at, last_id = buys[-1]
        expected = last_at + interval
        if now - lookback < expected - lead <= now:
            ids.append(cid)
            keys.append(f"replenish:{item_sku}:{last_id}")
            context.append({"sku": item_sku, "expected_at": expected.isoformat(), "interval_days": round(interval / timedelta(days=1), 2)})
    return ids, keys, context


def cron_due(expression: str, since: datetime, now: datetime) -> datetime | None:
    """The latest fire time of ``expression`` (UTC) in (since, now], or None (missed older fires are not replayed)."""
    last = croniter(expression, now + timedelta(seconds=1)).get_prev(datetime)
    return last if last > since else None
