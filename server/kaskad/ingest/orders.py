"""Orders with line items; idempotent on the order id; status changes become events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.ingest.batch import ItemError
from kaskad.ingest.contacts import ExternalId, ensure_contacts
from kaskad.ingest.events import insert_events
from kaskad.segments import order_stats
from kaskad.store.dialect import insert_for
from kaskad.store.models import Order, OrderItem

OrderStatus = Literal["placed", "paid", "cancelled", "refunded", "partially_refunded"]
CENT = Decimal("0.01")


class ItemIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    sku: Annotated[str, Meta(min_length=1, max_length=120)]
    quantity: Decimal
    price: Decimal
    name: Annotated[str, Meta(max_length=300)] | None = None
    category: Annotated[str, Meta(max_length=120)] | None = None


class OrderIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: Annotated[str, Meta(min_length=1, max_length=200)]
    contact: ExternalId
    status: OrderStatus
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
    placed_at: Annotated[datetime, Meta(tz=True)]
    items: list[ItemIn] = []
    amount: Decimal | None = None
    refunded_amount: Decimal = Decimal(0)
    attributes: dict = {}


def _check(o: OrderIn) -> tuple[str, str] | None:
    for n, i in enumerate(o.items):
        if not i.quantity.is_finite() or i.quantity <= 0:
            return f"items[{n}].quantity", f"quantity must be above 0, got {i.quantity}"
        if not i.price.is_finite() or i.price < 0:
            return f"items[{n}].price", f"price must be 0 or more, got {i.price}"
    for name in ("amount", "refunded_amount"):
        v = getattr(o, name)
        if v is not None and (not v.is_finite() or v < 0):
            return name, f"{name} must be 0 or more, got {v}"
    total = sum((i.quantity * i.price for i in o.items), Decimal(0))
    if o.amount is None:
        if not o.items:
            return "amount", "give the order amount or its items"
        o.amount = total
    elif o.items and abs(total - o.amount) >= CENT:
        return "amount", f"amount {o.amount} does not match the items, which add up to {total}"
    if o.refunded_amount > o.amount:
        return "refunded_amount", f"refunded {o.refunded_amount} is more than the order amount {o.amount}"
    if o.status == "refunded" and o.refunded_amount == 0:
        o.refunded_amount = o.amount
    if o.status == "partially_refunded" and not (0 < o.refunded_amount < o.amount):
        return "refunded_amount", "a partially refunded order needs refunded_amount between 0 and the amount"
    return None


def _event(order_id: int, contact_id: int, o: OrderIn, name: str, at: datetime, now: datetime) -> dict:
    key = f"order:{o.id}:{o.status}" + (f":{o.refunded_amount}" if o.status == "partially_refunded" else "")
    if name == "order_placed":
        key = f"order:{o.id}:placed"
    return {
        "contact_id": contact_id,
        "name": name,
        "occurred_at": at,
        "properties": {
            "order_id": o.id,
            "amount": str(o.amount),
            "currency": o.currency,
            "status": o.status,
            "refunded_amount": str(o.refunded_amount),
            "items": [
                {"sku": i.sku, "category": i.category, "quantity": str(i.quantity), "price": str(i.price)} for i in o.items
            ],
        },
        "idempotency_key": key,
        "received_at": now,
    }


_STATUS_EVENT = {
    "paid": "order_paid",
    "cancelled": "order_cancelled",
    "refunded": "order_refunded",
    "partially_refunded": "order_refunded",
}


def store_orders(session: Session, items: list[tuple[int, OrderIn]]) -> tuple[int, int, list[ItemError]]:
    """Returns (created, updated, errors)."""
    now = clock.now()
    errors: list[ItemError] = []
    valid: dict[str, OrderIn] = {}
    for index, o in items:
        problem = _check(o)
        if problem:
            errors.append(ItemError(index=index, field=problem[0], message=problem[1]))
        else:
            valid[o.id] = o  # a repeated id in one batch: the last one wins
    if not valid:
        return 0, 0, errors
    contacts = ensure_contacts(session, [o.contact for o in valid.values()])
    q = select(Order.id, Order.external_id, Order.status, Order.refunded_amount, Order.contact_id).where(
        Order.external_id.in_(list(valid))
    )
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    existing = {r.external_id: r for r in session.execute(q)}
    events: list[dict] = []
    new = [o for oid, o in valid.items() if oid not in existing]
    created = 0
    if new:
        stmt = insert_for(session, Order).on_conflict_do_nothing(index_elements=["external_id"]).returning(
            Order.id, Order.external_id
        )
        ids = dict(
            (ext, oid)
            for oid, ext in session.execute(
                stmt,
                [
                    {
                        "external_id": o.id, "contact_id": contacts[o.contact], "status": o.status, "amount": o.amount,
                        "refunded_amount": o.refunded_amount, "currency": o.currency, "placed_at": o.placed_at,
                        "attributes": o.attributes, "created_at": now,
                    }
                    for o in new
                ],
            )
        )
        created = len(ids)
        item_rows = [
            {
                "order_id": ids[o.id], "sku": i.sku, "name": i.name, "category": i.category,
                "quantity": i.quantity, "price": i.price, "amount": i.quantity * i.price,
            }
            for o in new if o.id in ids for i in o.items
        ]
        if item_rows:
            session.execute(insert_for(session, OrderItem), item_rows)
        for o in new:
            if o.id not in ids:
                continue
            cid = contacts[o.contact]
            events.append(_event(ids[o.id], cid, o, "order_placed", o.placed_at, now))
            if o.status in _STATUS_EVENT:
                events.append(_event(ids[o.id], cid, o, _STATUS_EVENT[o.status], now if o.status != "paid" else o.placed_at, now))
    updated = 0
    changes = []
    for ext, row in existing.items():
        o = valid[ext]
        if o.status == row.status and o.refunded_amount == row.refunded_amount:
            continue
        changes.append({"id": row.id, "status": o.status, "refunded_amount": o.refunded_amount})
        if o.status in _STATUS_EVENT:
            events.append(_event(row.id, row.contact_id, o, _STATUS_EVENT[o.status], now, now))
    if changes:
        session.execute(update(Order), changes)
        updated = len(changes)
    insert_events(session, events)
    order_stats.refresh(session, {e["contact_id"] for e in events})
    return created, updated, errors
