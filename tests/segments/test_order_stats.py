"""The per-contact order summary follows order ingest: new orders, refunds, cancellations."""

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import select

from kaskad.ingest.orders import OrderIn, store_orders
from kaskad.segments.models import ContactOrderStats
from kaskad.store.engine import make_engine, make_sessionmaker, transaction


def _order(oid, contact, amount, day, status="paid", refunded="0"):
    return OrderIn(id=oid, contact=contact, status=status, currency="EUR", amount=Decimal(amount),
                   refunded_amount=Decimal(refunded), placed_at=datetime(2026, 5, day, tzinfo=timezone.utc))


def _stats(sessions):
    with sessions() as s:
        return {r.contact_id: (r.orders, r.spend, r.first_at.day, r.last_at.day) for r in s.scalars(select(ContactOrderStats))}


def test_ingest_keeps_the_summary_current(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        store_orders(s, list(enumerate([_order("o1", "ann", "100", 1), _order("o2", "ann", "50", 3), _order("o3", "bob", "70", 2)])))
    got = _stats(sessions)
    assert sorted(got.values()) == [(1, Decimal(70), 2, 2), (2, Decimal(150), 1, 3)]
    ann = next(k for k, v in got.items() if v[0] == 2)
    with transaction(sessions) as s:  # a partial refund of o2, o1 cancelled, bob's only order refunded
        store_orders(s, list(enumerate([
            _order("o2", "ann", "50", 3, status="partially_refunded", refunded="20"),
            _order("o1", "ann", "100", 1, status="cancelled"),
            _order("o3", "bob", "70", 2, status="refunded"),
        ])))
    assert _stats(sessions) == {ann: (1, Decimal(30), 3, 3)}  # bob has no counted order: no row
    engine.dispose()
