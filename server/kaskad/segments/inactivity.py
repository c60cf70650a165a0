"""Inactivity trigger: no order for N days, fired once per lapse.

The dedupe key names the contact's last order (``inactive:<days>:<order id>``):
running the job again finds the same last order and the same key, and a new
order starts a new lapse with a new key.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaskad.segments.models import ContactOrderStats
from kaskad.segments.order_stats import COUNTED
from kaskad.store.models import Contact, Order


def inactive_due(session: Session, days: int, now: datetime, *, lookback_days: int = 7) -> list[tuple[int, str]]:
    """(contact id, dedupe key) for contacts whose last counted order is more than ``days`` old
    and at most ``days + lookback_days`` old (a missed job run is caught up, old lapses are not flooded)."""
    st = ContactOrderStats
    cut = now - timedelta(days=days)
    # candidates by the summary's last_at (an index range), then the last order's id for the key
    q = (
        select(st.contact_id, func.max(Order.id))
        .join(Order, (Order.contact_id == st.contact_id) & (Order.placed_at == st.last_at) & COUNTED)
        .join(Contact, Contact.id == st.contact_id)
        .where(st.last_at <= cut, st.last_at > cut - timedelta(days=lookback_days), Contact.erased_at.is_(None))
        .group_by(st.contact_id)
        .order_by(st.contact_id)
    )
    return [(cid, f"inactive:{days}:{oid}") for cid, oid in session.execute(q)]
