from datetime import datetime, timedelta, timezone
from decimal import Decimal

from kaskad.segments import order_stats
from kaskad.segments.inactivity import inactive_due
from kaskad.store.engine import make_engine, make_sessionmaker, transaction
from kaskad.store.models import Contact, Order

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def test_fires_once_per_lapse_and_ignores_refunded_orders(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        a, b, c = (Contact(external_id=x, attributes={}, tags=[]) for x in "abc")
        s.add_all([a, b, c])
        s.flush()

        def order(who, n, days_ago, status="paid"):
            o = Order(external_id=f"{who.external_id}{n}", contact_id=who.id, status=status, amount=Decimal(10),
                      refunded_amount=Decimal(0), currency="EUR", placed_at=NOW - timedelta(days=days_ago))
            s.add(o)
            s.flush()
            return o

        a1 = order(a, 1, 31)
        order(b, 1, 31)
        order(b, 2, 5, status="refunded")  # a refunded order does not end the lapse
        order(c, 1, 200)  # lapsed long ago: not flooded
        order_stats.rebuild(s)  # orders written directly, not through ingest
    with transaction(sessions) as s:
        first = inactive_due(s, 30, NOW)
        assert first == sorted([(a.id, f"inactive:30:{a1.id}"), (b.id, first[1][1])])
        assert inactive_due(s, 30, NOW) == first  # same keys when run twice
        assert inactive_due(s, 30, NOW - timedelta(days=2)) == []
    with transaction(sessions) as s:
        a2 = order(a, 2, 1)  # a comes back
        order_stats.refresh(s, [a.id])
    with transaction(sessions) as s:
        assert [k for _, k in inactive_due(s, 30, NOW + timedelta(days=30))] == [f"inactive:30:{a2.id}"]
    engine.dispose()
