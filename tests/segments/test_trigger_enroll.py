"""The trigger jobs enroll through the engine: runs are created once per occurrence.

Needs ``kaskad.engine.enroll`` (the journey engine, issue #2). It passed against the
engine branch (b27df31) merged into this one; it runs by itself once the engine is on main.
"""

from __future__ import annotations

import pytest

pytest.importorskip("kaskad.engine.enroll", reason="the journey engine is not merged yet; these tests run once it is")

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select

from kaskad import clock
from kaskad.flow import service
from kaskad.segments import membership, order_stats, trigger_jobs
from kaskad.store.engine import transaction
from kaskad.store.models import Contact, Event, Flow, JourneyRun, Order, OrderItem

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
FLOW = {"schema": "kaskad.flow/1", "name": "n", "reentry": {"policy": "concurrent"}, "nodes": [{"kind": "exit", "id": "end"}]}


def _publish(runtime, key, entry):
    with clock.travel(NOW - timedelta(hours=1)), transaction(runtime.sessions) as s:
        service.save(s, runtime.registry, {**FLOW, "key": key, "entry": entry})
        service.publish(s, runtime.registry, key)


def _runs(runtime, key):
    """(external id, run context) of the runs of flow ``key``."""
    with runtime.sessions() as s:
        q = (select(Contact.external_id, JourneyRun.context)
             .join(Contact, Contact.id == JourneyRun.contact_id)
             .join(Flow, Flow.id == JourneyRun.flow_id)
             .where(Flow.key == key).order_by(Contact.external_id))
        return [(x, c) for x, c in s.execute(q)]


def _job(runtime, fn, at):
    with transaction(runtime.sessions) as s:
        return fn(s, runtime, at)


def _contact(s, name):
    c = Contact(external_id=name, attributes={}, tags=[])
    s.add(c)
    s.flush()
    return c.id


def test_abandoned_cart_and_replenishment_enroll_once(runtime):
    with transaction(runtime.sessions) as s:
        ann, bob = _contact(s, "ann"), _contact(s, "bob")
        s.add(Event(contact_id=ann, name="cart_updated", occurred_at=NOW - timedelta(hours=5), properties={}))
        s.add(Event(contact_id=bob, name="cart_updated", occurred_at=NOW - timedelta(hours=5), properties={}))
        s.add(Event(contact_id=bob, name="order_placed", occurred_at=NOW - timedelta(hours=1), properties={}))
        for i, ago in enumerate((87, 57, 27)):
            o = Order(external_id=f"o{i}", contact_id=ann, status="paid", amount=Decimal(5), refunded_amount=Decimal(0),
                      currency="EUR", placed_at=NOW - timedelta(days=ago))
            s.add(o)
            s.flush()
            s.add(OrderItem(order_id=o.id, sku="COFFEE", category=None, quantity=1, price=5, amount=5))
        order_stats.refresh(s, [ann])
    _publish(runtime, "carts", {"kind": "abandoned_cart", "after": "PT4H"})
    _publish(runtime, "refill", {"kind": "replenishment", "sku": "COFFEE", "lead": "P3D"})
    assert _job(runtime, trigger_jobs.abandoned_cart_flows, NOW) == 1
    assert _job(runtime, trigger_jobs.abandoned_cart_flows, NOW + timedelta(minutes=1)) == 0  # the same cart update
    assert [x for x, _ in _runs(runtime, "carts")] == ["ann"]
    assert _job(runtime, trigger_jobs.replenishment_flows, NOW) == 1  # last 27 days ago, every 30 days: due 3 days ahead
    assert _job(runtime, trigger_jobs.replenishment_flows, NOW) == 0
    (who, ctx), = _runs(runtime, "refill")
    assert who == "ann" and ctx["sku"] == "COFFEE" and ctx["interval_days"] == 30


def test_segment_publish_schedule_and_enter(runtime):
    with transaction(runtime.sessions) as s:
        ann = _contact(s, "ann")
        s.add(Order(external_id="o1", contact_id=ann, status="paid", amount=Decimal(5), refunded_amount=Decimal(0),
                    currency="EUR", placed_at=NOW - timedelta(days=1)))
        s.flush()
        order_stats.refresh(s, [ann])
    from kaskad import segments

    segments.define(segments.decode(b'{"key": "buyers", "name": "b", "condition": {"kind": "orders", "measure": "count", "op": "gte", "value": 1}}'))
    _publish(runtime, "hello", {"kind": "segment", "segment": "buyers", "on": "publish"})
    _publish(runtime, "weekly", {"kind": "segment", "segment": "buyers", "on": "schedule", "schedule": "0 12 * * *"})
    _publish(runtime, "welcome", {"kind": "segment", "segment": "buyers", "on": "enter"})
    assert _job(runtime, trigger_jobs.segment_publish_flows, NOW) == 1
    assert _job(runtime, trigger_jobs.segment_publish_flows, NOW) == 0
    assert _job(runtime, trigger_jobs.segment_schedule_flows, NOW) == 1  # 12:00 fired
    assert _job(runtime, trigger_jobs.segment_schedule_flows, NOW + timedelta(hours=1)) == 0
    assert _job(runtime, trigger_jobs.segment_schedule_flows, NOW + timedelta(days=1)) == 1  # the next day's fire

    with transaction(runtime.sessions) as s:
        membership.full_pass(s, "buyers", NOW)  # the silent baseline
        bob = _contact(s, "bob")
        s.add(Order(external_id="o2", contact_id=bob, status="paid", amount=Decimal(5), refunded_amount=Decimal(0),
                    currency="EUR", placed_at=NOW))
        s.flush()
        order_stats.refresh(s, [bob])
        membership.full_pass(s, "buyers", NOW + timedelta(minutes=1))
    assert _job(runtime, trigger_jobs.segment_move_flows, NOW + timedelta(minutes=1)) == 1
    assert _job(runtime, trigger_jobs.segment_move_flows, NOW + timedelta(minutes=2)) == 0
    assert [x for x, _ in _runs(runtime, "welcome")] == ["bob"]
