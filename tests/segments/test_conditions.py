"""Each condition kind on SQLite and PostgreSQL, through the compiled SQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from kaskad import segments
from kaskad.segments import order_stats
from kaskad.segments.model import Segment
from kaskad.store.engine import make_engine, make_sessionmaker, transaction
from kaskad.store.models import Consent, Contact, Event, Order, OrderItem

NOW = datetime(2026, 6, 1, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def db(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        people = {
            "none": Contact(external_id="none", attributes={"city": "Riga", "age": 17}, tags=["new"]),
            "big": Contact(external_id="big", attributes={"city": "Oslo", "age": 40, "vip": True}, tags=["vip", "50%_off"]),
            "refunder": Contact(external_id="refunder", attributes={}, tags=[]),
            "recent": Contact(external_id="recent", attributes={"city": "Riga", "age": 30}, tags=["vip2"]),
        }
        s.add_all(people.values())
        s.flush()
        ids = {k: c.id for k, c in people.items()}

        def order(who, n, amount, days_ago, status="paid", refunded=0, items=()):
            o = Order(external_id=f"{who}-{n}", contact_id=ids[who], status=status, amount=Decimal(amount),
                      refunded_amount=Decimal(refunded), currency="EUR", placed_at=NOW - timedelta(days=days_ago))
            s.add(o)
            s.flush()
            for sku, cat in items:
                s.add(OrderItem(order_id=o.id, sku=sku, category=cat, quantity=1, price=1, amount=1))

        order("big", 1, 8000, 100, items=[("WINE-1", "wine")])
        order("big", 2, 4000, 70, refunded=1000)
        order("refunder", 1, 20000, 80, status="refunded", items=[("WINE-1", "wine")])
        order("refunder", 2, 500, 75)
        order("recent", 1, 300, 1)
        s.add(Consent(contact_id=ids["recent"], channel="email", topic="*", status="granted"))
        s.add(Consent(contact_id=ids["big"], channel="email", topic="*", status="revoked"))
        for d in (1, 2, 40):
            s.add(Event(contact_id=ids["none"], name="page_view", occurred_at=NOW - timedelta(days=d), properties={}))
        s.flush()
        order_stats.rebuild(s)  # orders written directly, not through ingest
    yield sessions, ids
    engine.dispose()


def who(db, condition: dict) -> set[str]:
    sessions, ids = db
    seg = msgspec.convert({"key": "t", "name": "t", "condition": condition}, Segment)
    segments.define(seg)
    with transaction(sessions) as s:
        got = segments.members_among(s, "t", ids.values(), now=NOW)
        # the whole-base query (semi-joins for windowed orders) agrees with the restricted one (LEFT JOINs)
        assert set(segments.members(s, "t", limit=1000, now=NOW)) == got
        assert segments.count(s, "t", now=NOW) == len(got)
    back = {v: k for k, v in ids.items()}
    return {back[i] for i in got}


def test_attributes_numbers_strings_booleans(db):
    assert who(db, {"kind": "attribute", "name": "city", "value": "Riga"}) == {"none", "recent"}
    assert who(db, {"kind": "attribute", "name": "age", "op": "gte", "value": 30}) == {"big", "recent"}
    assert who(db, {"kind": "attribute", "name": "vip", "value": True}) == {"big"}
    assert who(db, {"kind": "attribute", "name": "city", "op": "missing"}) == {"refunder"}
    assert who(db, {"kind": "attribute", "name": "city", "op": "neq", "value": "Riga"}) == {"big", "refunder"}


def test_tags_match_whole_tags_only(db):
    assert who(db, {"kind": "tag", "tag": "vip"}) == {"big"}
    assert who(db, {"kind": "tag", "tag": "50%_off"}) == {"big"}
    assert who(db, {"kind": "tag", "tag": "50"}) == set()


def test_consent(db):
    assert who(db, {"kind": "consent", "channel": "email"}) == {"recent"}


def test_spend_excludes_refunded_orders_and_refunded_amounts(db):
    # big: 8000 + (4000 - 1000); refunder's 20000 refunded order counts for nothing
    assert who(db, {"kind": "orders", "measure": "total", "op": "gte", "value": 11000}) == {"big"}
    assert who(db, {"kind": "orders", "measure": "total", "op": "gt", "value": 11000}) == set()
    assert who(db, {"kind": "orders", "measure": "total", "op": "eq", "value": 0}) == {"none"}
    assert who(db, {"kind": "orders", "measure": "average", "op": "eq", "value": 5500}) == {"big"}
    assert who(db, {"kind": "orders", "measure": "count", "op": "eq", "value": 0}) == {"none"}
    assert who(db, {"kind": "orders", "measure": "count", "op": "gte", "value": 1, "within_days": 72}) == {"big", "recent"}


def test_last_order_and_no_orders(db):
    assert who(db, {"kind": "orders", "measure": "days_since_last", "op": "gt", "value": 60}) == {"big", "refunder"}
    assert who(db, {"kind": "orders", "measure": "days_since_last", "op": "missing"}) == {"none"}


def test_bought_sku_category_not_in_refunded_orders(db):
    assert who(db, {"kind": "bought", "category": "wine"}) == {"big"}
    assert who(db, {"kind": "bought", "sku": "WINE-1", "within_days": 90}) == set()


def test_events_at_least_at_most_within_window(db):
    assert who(db, {"kind": "event", "name": "page_view", "min": 3}) == {"none"}
    assert who(db, {"kind": "event", "name": "page_view", "min": 3, "within_days": 30}) == set()
    assert who(db, {"kind": "event", "name": "page_view", "min": 0, "max": 0}) == {"big", "refunder", "recent"}


def test_boolean_tree_and_segment_reference(db):
    assert who(db, {"kind": "not", "condition": {"kind": "tag", "tag": "vip"}}) == {"none", "refunder", "recent"}
    assert who(db, {"kind": "any", "conditions": [{"kind": "tag", "tag": "vip"}, {"kind": "tag", "tag": "new"}]}) == {"big", "none"}
    assert who(db, {"kind": "segment", "segment": "lapsed-big-spenders"}) == {"big"}
    assert who(db, {"kind": "not", "condition": {"kind": "segment", "segment": "sleeping-90d"}}) == {"none", "big", "refunder", "recent"}


def test_shipped_segments(db):
    sessions, ids = db
    with transaction(sessions) as s:
        assert segments.members_among(s, "lapsed-big-spenders", ids.values(), now=NOW) == {ids["big"]}
        assert segments.members_among(s, "sleeping-90d", ids.values(), now=NOW + timedelta(days=25)) == {ids["big"], ids["refunder"]}
        assert segments.members_among(s, "sleeping-90d", ids.values(), now=NOW) == set()
        assert segments.members(s, "sleeping-90d", limit=1, now=NOW + timedelta(days=25)) == [min(ids["big"], ids["refunder"])]


def test_bad_definitions_name_the_field():
    with pytest.raises(msgspec.ValidationError, match=r"\$.condition.measure"):
        segments.decode(b'{"key":"x","name":"x","condition":{"kind":"orders","measure":"nope"}}')
    seg = msgspec.convert({"key": "x", "name": "x", "condition": {"kind": "orders", "measure": "total", "op": "gt"}}, Segment)
    with pytest.raises(segments.SegmentError, match=r"\$.condition.value"):
        segments.define(seg)
    cyc = msgspec.convert({"key": "loop", "name": "x", "condition": {"kind": "segment", "segment": "loop"}}, Segment)
    with pytest.raises(segments.SegmentError, match="cycle"):
        segments.define(cyc)


def test_windowed_order_measures(db):
    # big: 8000 at 100 days, 4000 (1000 refunded) at 70 days; recent: 300 yesterday
    assert who(db, {"kind": "orders", "measure": "total", "op": "eq", "value": 3000, "within_days": 90}) == {"big"}
    assert who(db, {"kind": "orders", "measure": "count", "op": "eq", "value": 0, "within_days": 30}) == {"none", "big", "refunder"}
    assert who(db, {"kind": "orders", "measure": "days_since_last", "op": "lt", "value": 73, "within_days": 73}) == {"big", "recent"}
    assert who(db, {"kind": "orders", "measure": "days_since_last", "op": "exists", "within_days": 73}) == {"big", "recent"}
    assert who(db, {"kind": "orders", "measure": "average", "op": "gte", "value": 1000, "within_days": 90}) == {"big"}
    assert who(db, {"kind": "not", "condition": {"kind": "orders", "measure": "count", "op": "gte", "value": 1,
                                                 "within_days": 72}}) == {"none", "refunder"}
    assert who(db, {"kind": "all", "conditions": [
        {"kind": "orders", "measure": "count", "op": "gte", "value": 2},
        {"kind": "orders", "measure": "count", "op": "eq", "value": 1, "within_days": 90},
    ]}) == {"big"}


def test_every_error_is_reported_with_its_path():
    seg = msgspec.convert({"key": "x", "name": "x", "condition": {"kind": "all", "conditions": [
        {"kind": "orders", "measure": "total", "op": "gt"},
        {"kind": "segment", "segment": "no-such"},
        {"kind": "event", "name": "e", "where": {"a": {"gt": 1, "lt": 2}, "b": {"in": []}}},
    ]}}, Segment)
    with pytest.raises(segments.SegmentError) as err:
        segments.define(seg)
    assert [p for p, _ in err.value.errors] == [
        "$.condition.conditions[0].value", "$.condition.conditions[1].segment",
        "$.condition.conditions[2].where.a", "$.condition.conditions[2].where.b.in",
    ]
