"""Trigger detection (abandoned cart, replenishment, cron, local-time dates) and the jobs that hand it to the engine."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from kaskad.flow import service
from kaskad.segments import dates, order_stats, trigger_jobs, triggers
from kaskad.segments.models import SegmentsState
from kaskad.store.engine import make_engine, make_sessionmaker, transaction
from kaskad.store.models import Contact, Event, Order, OrderItem

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _contacts(s, *names, **attrs):
    out = {}
    for n in names:
        c = Contact(external_id=n, attributes=attrs.get(n, {}), tags=[], timezone=attrs.get(f"{n}_tz"))
        s.add(c)
        s.flush()
        out[n] = c.id
    return out


def _event(s, cid, name, hours_ago):
    e = Event(contact_id=cid, name=name, occurred_at=NOW - timedelta(hours=hours_ago), properties={})
    s.add(e)
    s.flush()
    return e.id


def test_abandoned_cart(sessions):
    with transaction(sessions) as s:
        c = _contacts(s, "left", "bought", "still_shopping", "long_ago")
        left = _event(s, c["left"], "cart_updated", 5)
        _event(s, c["bought"], "cart_updated", 5)
        _event(s, c["bought"], "order_placed", 4.5)  # the order came: cancelled
        _event(s, c["still_shopping"], "cart_updated", 6)
        _event(s, c["still_shopping"], "cart_updated", 1)  # the latest update is not 4 hours old yet
        _event(s, c["long_ago"], "cart_updated", 24 * 5)
    with sessions() as s:
        got = triggers.abandoned_carts(s, NOW, after=timedelta(hours=4))
        assert got == ([c["left"]], [f"cart:{left}"])
        assert triggers.abandoned_carts(s, NOW + timedelta(minutes=5), after=timedelta(hours=4)) == got  # same key again
        later = triggers.abandoned_carts(s, NOW + timedelta(hours=3, minutes=1), after=timedelta(hours=4))
        assert later[0] == [c["left"], c["still_shopping"]]


def _buy(s, cid, oid, days_ago, sku, status="paid"):
    o = Order(external_id=oid, contact_id=cid, status=status, amount=Decimal(10), refunded_amount=Decimal(0), currency="EUR",
              placed_at=NOW - timedelta(days=days_ago))
    s.add(o)
    s.flush()
    s.add(OrderItem(order_id=o.id, sku=sku, category=None, quantity=1, price=10, amount=10))
    s.add(OrderItem(order_id=o.id, sku="BAG", category=None, quantity=1, price=0, amount=0))
    return o.id


def test_replenishment_from_the_contacts_own_median_interval(sessions):
    with transaction(sessions) as s:
        c = _contacts(s, "regular", "twice", "irregular", "refunder")
        for i, ago in enumerate((117, 87, 57, 27)):  # every 30 days; next due in 3 days
            last = _buy(s, c["regular"], f"r{i}", ago, "COFFEE")
        _buy(s, c["twice"], "t1", 57, "COFFEE")
        _buy(s, c["twice"], "t2", 27, "COFFEE")
        for i, ago in enumerate((62, 52, 22, 7)):  # gaps 10, 30, 15: median 15 -> next in 8 days, reminder in 5
            _buy(s, c["irregular"], f"i{i}", ago, "TEA")
        for i, ago in enumerate((87, 57, 27)):
            _buy(s, c["refunder"], f"f{i}", ago, "COFFEE", status="refunded" if i == 1 else "paid")
    with sessions() as s:
        ids, keys, ctx = triggers.replenishment_due(s, NOW, lead=timedelta(days=3), sku="COFFEE")
        assert (ids, keys) == ([c["regular"]], [f"replenish:COFFEE:{last}"])
        assert ctx[0]["interval_days"] == 30 and ctx[0]["expected_at"] == (NOW + timedelta(days=3)).isoformat()
        assert triggers.replenishment_due(s, NOW, lead=timedelta(days=3), sku="TEA")[0] == []
        assert triggers.replenishment_due(s, NOW + timedelta(days=4), lead=timedelta(days=3), sku="TEA")[0] == []
        assert triggers.replenishment_due(s, NOW + timedelta(days=5), lead=timedelta(days=3), sku="TEA")[0] == [c["irregular"]]
        # any SKU: the free bag in every order is bought regularly too
        assert sorted(k.split(":")[1] for k in triggers.replenishment_due(s, NOW, lead=timedelta(days=3))[1]) == ["BAG", "COFFEE"]


def test_cron_fires_once_per_fire_time():
    monday_10 = datetime(2026, 11, 30, 10, tzinfo=timezone.utc)
    assert triggers.cron_due("0 10 * * mon", monday_10 - timedelta(days=10), monday_10 + timedelta(minutes=3)) == monday_10
    assert triggers.cron_due("0 10 * * mon", monday_10, monday_10 + timedelta(days=6)) is None


def test_date_trigger_waits_for_the_local_time(sessions):
    with transaction(sessions) as s:
        c = _contacts(s, "riga", riga={"birthday": "1990-06-01"}, riga_tz="Europe/Riga")
    with sessions() as s:  # 12:00 UTC is 15:00 in Riga
        assert dates.date_due(s, "birthday", 0, NOW, at=time(16, 0)) == []
        assert dates.date_due(s, "birthday", 0, NOW, at=time(10, 0)) == [(c["riga"], "birthday:0:2026")]
        assert dates.date_due(s, "birthday", 0, NOW, yearly=False) == []
        assert dates.date_due(s, "birthday", 0, datetime(1990, 6, 1, 12, tzinfo=timezone.utc), yearly=False) == [(c["riga"], "birthday:0:once")]


FLOW = {"schema": "kaskad.flow/1", "key": "k", "name": "n", "nodes": [{"kind": "exit", "id": "end"}]}


def _publish(runtime, key, entry):
    with transaction(runtime.sessions) as s:
        service.save(s, runtime.registry, {**FLOW, "key": key, "entry": entry})
        service.publish(s, runtime.registry, key)


def test_new_entry_kinds_validate(runtime):
    from kaskad.flow.validate import validate

    _, errors = validate({**FLOW, "entry": {"kind": "abandoned_cart", "after": "PT0H"}}, runtime.registry)
    assert [e.path for e in errors] == ["entry.after"]
    _, errors = validate({**FLOW, "entry": {"kind": "replenishment", "min_purchases": 2}}, runtime.registry)
    assert errors and "min_purchases" in errors[0].path + errors[0].message
    flow, errors = validate({**FLOW, "entry": {"kind": "replenishment", "sku": "COFFEE", "lead": "P2D"}}, runtime.registry)
    assert errors == [] and flow.entry.lead == "P2D"


def test_jobs_find_published_flows_and_never_mark_done_without_the_engine(runtime):
    with transaction(runtime.sessions) as s:
        cid = _contacts(s, "ann")["ann"]
        _event(s, cid, "cart_updated", 24)
        _buy(s, cid, "o1", 3, "X")
        order_stats.refresh(s, [cid])
    _publish(runtime, "carts", {"kind": "abandoned_cart", "after": "PT4H"})
    _publish(runtime, "everyone", {"kind": "segment", "segment": "buyers", "on": "publish"})
    from kaskad import segments

    segments.define(segments.decode(b'{"key": "buyers", "name": "b", "condition": {"kind": "orders", "measure": "count", "op": "gte", "value": 1}}'))
    with runtime.sessions() as s:
        assert [k for k, _, _ in trigger_jobs.published(s, trigger_jobs.model.AbandonedCartEntry)] == ["carts"]
    try:
        import kaskad.engine.enroll  # noqa: F401
    except ImportError:
        now = NOW + timedelta(hours=1)
        for fn in (trigger_jobs.abandoned_cart_flows, trigger_jobs.segment_publish_flows):
            with pytest.raises(trigger_jobs.EngineMissing):
                with transaction(runtime.sessions) as s:
                    fn(s, runtime, now)
        with runtime.sessions() as s:  # the publish trigger is still to do
            assert s.scalar(select(SegmentsState).where(SegmentsState.name.like("trigger:publish:%"))) is None
