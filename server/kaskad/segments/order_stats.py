"""The per-contact order summary (:class:`ContactOrderStats`): count, net spend, first and last order.

Segment conditions on lifetime order aggregates and RFM read this table instead
of grouping ten million orders per query. Order ingest calls :func:`refresh`
for the contacts whose orders it wrote, in the same transaction, so the summary
is never behind the orders it describes. :func:`rebuild` recomputes everything
(after a bulk load that bypassed the ingest API).
"""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import delete, func, select, true
from sqlalchemy.orm import Session

from kaskad.segments.models import ContactOrderStats
from kaskad.store.dialect import insert_for
from kaskad.store.models import Contact, Order

#: Orders that count towards spend and frequency.
COUNTED = Order.status.not_in(("cancelled", "refunded"))
NET = Order.amount - func.coalesce(Order.refunded_amount, 0)
_CHUNK = 5000


def _aggregate(*where):
    return (
        select(
            Order.contact_id,
            func.count().label("orders"),
            func.sum(NET).label("spend"),
            func.min(Order.placed_at).label("first_at"),
            func.max(Order.placed_at).label("last_at"),
        )
        .where(true(), COUNTED, *where)
        .group_by(Order.contact_id)
    )


def _upsert(session: Session, source) -> None:
    cols = ["contact_id", "orders", "spend", "first_at", "last_at"]
    stmt = insert_for(session, ContactOrderStats).from_select(cols, source)
    stmt = stmt.on_conflict_do_update(
        index_elements=["contact_id"], set_={c: getattr(stmt.excluded, c) for c in cols[1:]}
    )
    session.execute(stmt)


def refresh(session: Session, contact_ids: Iterable[int]) -> None:
    """Recompute the summary of these contacts from their orders."""
    ids = sorted(set(contact_ids))
    pg = session.get_bind().dialect.name == "postgresql"
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        if pg:
            # Two ingests for one contact must not each write a summary that lacks the
            # other's order: the second waits here and then reads the first's commit.
            session.execute(select(Contact.id).where(Contact.id.in_(chunk)).order_by(Contact.id).with_for_update())
        _upsert(session, _aggregate(Order.contact_id.in_(chunk)))
        # contacts left with no counted order (all refunded or cancelled) have no row
        session.execute(
            delete(ContactOrderStats).where(
                ContactOrderStats.contact_id.in_(chunk),
                ContactOrderStats.contact_id.not_in(select(Order.contact_id).where(Order.contact_id.in_(chunk), COUNTED)),
            )
        )


def rebuild(session: Session) -> None:
    """Recompute every contact's summary from ``orders``."""
    session.execute(delete(ContactOrderStats))
    _upsert(session, _aggregate())
