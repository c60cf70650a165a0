"""Inactivity trigger: no order for N days, fired once per lapse.

The dedupe key names the contact's last order (``inactive:<days>:<order id>``):
running the job again finds the same last order and the same key, and a new
order starts a new lapse with a new key.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaskad.store.models import Contact, Order

COUNTED = Order.status.not_in(("cancelled", "refunded"))


def inactive_due(session: Session, days: int, now: datetime, *, lookback_days: int = 7) -> list[tuple[int, str]]:
    """(contact id, dedupe key) for contacts whose last counted order is more than ``days`` old
    and at most ``days + lookback_days`` old (a missed job run is caught up, old lapses are not flooded)."""
    last = (
        select(Order.contact_id, func.max(Order.placed_at).label("last_at"))
        .where(COUNTED)
        .group_by(Order.contact_id)
        .subquery()
    )
    cut = now - timedelta(days=days)
    q = (
        select(last.c.contact_id, func.max(Order.id))
        .join(Order, (Order.contact_id == last.c.contact_id) & (Order.placed_at == last.c.last_at) & COUNTED)
        .join(Contact, Contact.id == last.c.contact_id)
        .where(last.c.last_at <= cut, last.c.last_at > cut - timedelta(days=lookback_days), Contact.erased_at.is_(None))
        .group_by(last.c.contact_id)
        .order_by(last.c.contact_id)
    )
    return [(cid, f"inactive:{days}:{oid}") for cid, oid in session.execute(q)]
