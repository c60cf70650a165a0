"""Points for orders that come in through ``POST /api/v1/orders`` (an e-shop, a POS
that does not use the checkout API): a paid order earns by the program's accrual
rules, a refund takes back its share. Orders a checkout reservation already covers
(``order_id`` = the order's ``external_id``) are left to checkout, so nothing earns twice.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import String, cast, exists, func, literal, or_, select
from sqlalchemy.orm import aliased

from kaskad.loyalty import checkout, ledger, program, tiers
from kaskad.loyalty.ledger import num, whole_points
from kaskad.loyalty.models import LedgerEntry, Operation, Reservation
from kaskad.store.models import Order, OrderItem

EARNING = ("paid", "partially_refunded", "refunded")


def _earn_key(order_id) -> str:
    return f"order-earn:{order_id}"


def accrue_paid_orders(session, now: datetime, limit: int = 500) -> int:
    """Earn points for paid orders not earned yet (idempotent: the key is the order)."""
    key = literal("order-earn:") + cast(Order.id, String)
    rows = session.scalars(
        select(Order)
        .where(
            Order.status.in_(EARNING),
            ~exists().where(Operation.key == key),
            ~exists().where(Reservation.order_ref == Order.external_id),
        )
        .order_by(Order.id)
        .limit(limit)
    ).all()
    rules = program.load(session)
    for order in rows:
        items = session.scalars(select(OrderItem).where(OrderItem.order_id == order.id)).all()
        cart = checkout.Cart(
            items=[checkout.CartItem(sku=i.sku, price=i.price, quantity=i.quantity, category=i.category) for i in items]
            or [checkout.CartItem(sku="order", price=order.amount)],
            currency=order.currency,
        )
        subtotal = sum((i.price * i.quantity for i in cart.items), Decimal(0))

        def work(op, order=order, cart=cart, subtotal=subtotal):
            earn = checkout._earn_for(session, cart, order.contact_id, rules, order.amount, subtotal, now)
            points = Decimal(earn["points"])
            out = {"order": order.external_id, "points": num(points), "lot": None}
            if points > 0:
                lot = ledger.add_lot(session, op, order.contact_id, points, f"order {order.external_id}"[:120],
                                     program.after(rules.accrual.pending, now))
                lot.expires_at = program.after(rules.accrual.expires_in, lot.available_at)
                out["lot"] = lot.id
                ledger.emit(session, order.contact_id, "points_changed", {"earned": num(points), "order": order.external_id},
                            key=f"loyalty:points_changed:order:{order.id}", at=now)
            return out

        ledger.once(session, _earn_key(order.id), "order_earn", order.contact_id, work)
        tiers.recompute(session, order.contact_id, rules, now, f"order:{order.id}")
    return len(rows)


def reverse_refunded_orders(session, now: datetime, limit: int = 500) -> int:
    """Take back the refunded share of what an order earned (the whole of it on a full
    refund, or when a paid order is cancelled)."""
    # One key per refund state of an order; orders whose current state was handled drop out here.
    key_expr = (literal("order-refund:") + cast(Order.id, String) + literal(":")
                + cast(Order.refunded_amount, String) + literal(":") + Order.status)
    handled = aliased(Operation)
    rows = session.execute(
        select(Order, Operation, key_expr)
        .join(Operation, Operation.key == literal("order-earn:") + cast(Order.id, String))
        .where(or_(Order.refunded_amount > 0, Order.status == "cancelled"), ~exists().where(handled.key == key_expr))
        .order_by(Order.id)
        .limit(limit)
    ).all()
    done = 0
    for order, earned_op, key in rows:
        earned = Decimal(earned_op.result.get("points", "0"))
        if earned <= 0:
            ledger.once(session, key, "order_refund", order.contact_id, lambda op: {"points_reversed": "0"})
            tiers.recompute(session, order.contact_id, program.load(session), now, key)
            continue
        full = order.refunded_amount >= order.amount or order.status in ("refunded", "cancelled")
        target = earned if full else whole_points(earned * order.refunded_amount / order.amount)

        def work(op, order=order, earned_op=earned_op, target=target):
            taken = -Decimal(session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount), 0))
                .join(Operation, Operation.id == LedgerEntry.operation_id)
                .where(Operation.kind == "order_refund", Operation.contact_id == order.contact_id,
                       Operation.key.like(f"order-refund:{order.id}:%"))
            ))
            took = ledger.claw_back(session, op, order.contact_id, earned_op.result.get("lot"), target - taken,
                                    f"refund of order {order.external_id}"[:120]) if target > taken else Decimal(0)
            return {"order": order.external_id, "points_reversed": num(took), "unrecovered": num(target - taken - took)}

        ledger.once(session, key, "order_refund", order.contact_id, work)
        tiers.recompute(session, order.contact_id, program.load(session), now, key)
        done += 1
    return done
