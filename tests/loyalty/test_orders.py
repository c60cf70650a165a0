from datetime import datetime, timezone
from decimal import Decimal

from kaskad import clock
from kaskad.loyalty import balance, orders, program
from kaskad.loyalty.models import LoyaltyAccount
from kaskad.store.engine import transaction
from kaskad.store.models import Order, OrderItem

from .helpers import check_invariants, contact

T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)


def test_paid_orders_earn_once_and_refunds_take_back_their_share(runtime):
    cid = contact(runtime.sessions, "olga")
    with clock.travel(T0), transaction(runtime.sessions) as s:
        program.save(s, program.ProgramRules(
            accrual=program.Accrual(points_per_unit=Decimal("0.1"), pending="P0D"),
            tiers=[program.Tier(name="basic", min_spend=Decimal(0)), program.Tier(name="gold", min_spend=Decimal(150))]))
        o = Order(external_id="web-1", contact_id=cid, status="paid", amount=Decimal(200), currency="EUR", placed_at=T0)
        s.add(o)
        s.flush()
        s.add(OrderItem(order_id=o.id, sku="A", category="x", quantity=Decimal(2), price=Decimal(100), amount=Decimal(200)))
        s.add(Order(external_id="till-9", contact_id=cid, status="placed", amount=Decimal(50), currency="EUR", placed_at=T0))
    with clock.travel(T0):
        for _ in range(2):
            with transaction(runtime.sessions) as s:
                orders.accrue_paid_orders(s, T0)
                orders.reverse_refunded_orders(s, T0)
        with transaction(runtime.sessions) as s:
            assert balance(s, cid)["points"] == "20"  # the placed order earns nothing yet
            assert balance(s, cid)["tier"]["tier"] == "gold"
            o = s.query(Order).filter_by(external_id="web-1").one()
            o.status, o.refunded_amount = "partially_refunded", Decimal(50)
        handled = []
        for _ in range(2):
            with transaction(runtime.sessions) as s:
                handled.append(orders.reverse_refunded_orders(s, T0))
        assert handled == [1, 0]  # a handled refund state is not looked at again
        with transaction(runtime.sessions) as s:
            assert balance(s, cid)["points"] == "15"
            o = s.query(Order).filter_by(external_id="web-1").one()
            o.status, o.refunded_amount = "refunded", Decimal(200)
        with transaction(runtime.sessions) as s:
            orders.reverse_refunded_orders(s, T0)
            assert balance(s, cid)["points"] == "0"
            assert check_invariants(s, cid) == 0
            assert s.query(LoyaltyAccount).filter_by(contact_id=cid).one().tier == "basic"  # downgraded by the refund


def test_a_paid_order_cancelled_later_gives_its_points_back(runtime):
    cid = contact(runtime.sessions, "otto")
    with clock.travel(T0):
        with transaction(runtime.sessions) as s:
            program.save(s, program.ProgramRules(accrual=program.Accrual(points_per_unit=Decimal("0.1"), pending="P0D")))
            s.add(Order(external_id="web-2", contact_id=cid, status="paid", amount=Decimal(90), currency="EUR", placed_at=T0))
        with transaction(runtime.sessions) as s:
            orders.accrue_paid_orders(s, T0)
            assert balance(s, cid)["points"] == "9"
            s.query(Order).filter_by(external_id="web-2").one().status = "cancelled"
        with transaction(runtime.sessions) as s:
            orders.reverse_refunded_orders(s, T0)
            assert balance(s, cid)["points"] == "0"
            assert check_invariants(s, cid) == 0
