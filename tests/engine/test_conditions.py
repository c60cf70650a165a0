"""Branch conditions for a batch of runs, on SQLite and PostgreSQL, with rows written directly."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest
from sqlalchemy import event as sa_event

from kaskad import segments
from kaskad.engine.conditions import RunView, evaluate
from kaskad.flow.model import Condition
from kaskad.segments.model import Segment
from kaskad.store.engine import transaction
from kaskad.store.models import Contact, Event, Flow, FlowVersion, JourneyRun, MessageEvent, Order, OutboxMessage

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def cond(data: dict):
    return msgspec.convert(data, Condition)


def view(contact: dict, **kw) -> RunView:
    defaults = dict(run_id=1, contact_id=1, entered_at=NOW - timedelta(days=1), flow_id=1)
    return RunView(contact=contact, **{**defaults, **kw})


class World:
    """Contacts and runs of one flow, written straight into the database."""

    def __init__(self, runtime):
        self.runtime = runtime
        with transaction(runtime.sessions) as s:
            flow = Flow(key="f", name="F")
            s.add(flow)
            s.flush()
            version = FlowVersion(flow_id=flow.id, version=1, status="published", document="{}")
            s.add(version)
            s.flush()
            self.flow_id, self.version_id = flow.id, version.id
        self.contacts: dict[str, dict] = {}
        self.contact_ids: dict[str, int] = {}

    def contact(self, name: str, attributes=None, tags=(), **fields) -> int:
        with transaction(self.runtime.sessions) as s:
            c = Contact(external_id=name, attributes=attributes or {}, tags=list(tags), **fields)
            s.add(c)
            s.flush()
            self.contact_ids[name] = c.id
        self.contacts[name] = {"email": fields.get("email"), "phone": fields.get("phone"),
                               "timezone": fields.get("timezone"), "external_id": name,
                               "attributes": attributes or {}, "tags": list(tags)}
        return self.contact_ids[name]

    def run(self, who: str, entered_at: datetime = NOW - timedelta(days=2)) -> RunView:
        with transaction(self.runtime.sessions) as s:
            r = JourneyRun(flow_id=self.flow_id, flow_version_id=self.version_id, contact_id=self.contact_ids[who],
                           node_id="check", status="claimed", entered_at=entered_at)
            s.add(r)
            s.flush()
            run_id = r.id
        return RunView(run_id=run_id, contact_id=self.contact_ids[who], entered_at=entered_at,
                       flow_id=self.flow_id, contact=self.contacts[who])

    def events(self, who: str, name: str, *moments: datetime, properties=None) -> None:
        with transaction(self.runtime.sessions) as s:
            for at in moments:
                s.add(Event(contact_id=self.contact_ids[who], name=name, occurred_at=at, properties=properties or {}))

    def message(self, run: RunView, key_suffix: str, *, sent_at=NOW - timedelta(hours=5), status="sent",
                events=()) -> int:
        with transaction(self.runtime.sessions) as s:
            m = OutboxMessage(key=f"run:{run.run_id}:{key_suffix}", run_id=run.run_id, flow_id=self.flow_id,
                              node_id=key_suffix.split(":")[0], contact_id=run.contact_id, channel="test",
                              status=status, sent_at=sent_at)
            s.add(m)
            s.flush()
            for st in events:
                s.add(MessageEvent(outbox_id=m.id, contact_id=run.contact_id, status=st, at=NOW - timedelta(hours=1)))
            return m.id

    def order(self, who: str, placed_at: datetime, status="paid") -> None:
        with transaction(self.runtime.sessions) as s:
            n = s.query(Order).count()
            s.add(Order(external_id=f"o{n}", contact_id=self.contact_ids[who], status=status, amount=Decimal(10),
                        currency="EUR", placed_at=placed_at))

    def check(self, condition: dict, runs: list[RunView], now: datetime = NOW) -> list[bool]:
        with transaction(self.runtime.sessions) as s:
            return evaluate(s, self.runtime, cond(condition), runs, now)


@pytest.fixture
def world(runtime) -> World:
    return World(runtime)


# ---------------------------------------------------------------- attribute and tag (the loaded contact)

ANNA = {"email": "anna@example.com", "phone": None, "timezone": "Europe/Riga", "external_id": "anna",
        "attributes": {"city": "Riga", "age": 34, "spend": "1200.50", "birthday": "1990-06-04",
                       "last_order": "2026-05-20T18:00:00+00:00", "address": {"zip": "LV-1010"},
                       "interests": ["wine", "cheese"], "vip": True},
        "tags": ["vip", "newsletter"]}
BORIS = {"email": None, "phone": "+37120000000", "timezone": None, "external_id": "boris",
         "attributes": {"city": "Oslo", "age": "n/a", "birthday": "garbage"}, "tags": []}


def attr(attribute: str, op: str = "eq", value=None, *, runs=(ANNA, BORIS)) -> list[bool]:
    condition = cond({"kind": "attribute", "attribute": attribute, "op": op, "value": value})
    return evaluate(None, None, condition, [view(c) for c in runs], NOW)


def test_attribute_contact_fields():
    assert attr("email", "eq", "anna@example.com") == [True, False]
    assert attr("email", "exists") == [True, False]
    assert attr("phone", "not_exists") == [True, False]
    assert attr("external_id", "in", ["boris", "x"]) == [False, True]
    assert attr("timezone", "contains", "Riga") == [True, False]


def test_attribute_values_nested_and_prefixed():
    assert attr("city", "in", ["Riga", "Tallinn"]) == [True, False]
    assert attr("city", "not_in", ["Riga"]) == [False, True]
    assert attr("address.zip", "eq", "LV-1010") == [True, False]
    assert attr("attributes.city", "eq", "Oslo") == [False, True]
    assert attr("interests", "contains", "wine") == [True, False]
    assert attr("vip", "eq", True) == [True, False]


def test_attribute_numbers_and_type_mismatches():
    assert attr("age", "gte", 30) == [True, False]  # "n/a" against a number is false, not an error
    assert attr("age", "lt", 30) == [False, False]
    assert attr("spend", "gt", 1000) == [True, False]  # a numeric string compares as a number
    assert attr("age", "gt", [1]) == [False, False]
    assert attr("age", "in", "34") == [False, False]  # `in` without a list holds for nobody


def test_attribute_dates_compare_as_dates():
    assert attr("birthday", "lt", "1995-01-01") == [True, False]
    assert attr("birthday", "gte", "1990-06-04T00:00:00Z") == [True, False]
    assert attr("last_order", "gte", "2026-05-20") == [True, False]
    # 19:00 at +02:00 is 17:00 UTC, earlier than 18:00 UTC: instants, not text
    assert attr("last_order", "lt", "2026-05-20T19:00:00+02:00") == [False, False]
    assert attr("last_order", "gt", "2026-05-20T19:00:00+02:00") == [True, False]


def test_attribute_missing_values():
    assert attr("nickname", "eq", None) == [False, False]
    assert attr("nickname", "ne", "x") == [True, True]
    assert attr("nickname", "exists") == [False, False]
    assert attr("nickname", "not_exists") == [True, True]
    assert attr("address.zip", "not_exists") == [False, True]


def test_tags():
    def tag(name, present=True):
        condition = cond({"kind": "tag", "tag": name, "present": present})
        return evaluate(None, None, condition, [view(ANNA), view(BORIS)], NOW)

    assert tag("vip") == [True, False]
    assert tag("vip", present=False) == [False, True]
    assert tag("nobody-has-it") == [False, False]


def test_no_runs_no_queries():
    assert evaluate(None, None, cond({"kind": "segment", "segment": "does-not-matter"}), [], NOW) == []


def test_unknown_condition_type_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot evaluate a branch condition of type dict"):
        evaluate(None, None, {"kind": "weather"}, [view(ANNA)], NOW)


# ---------------------------------------------------------------- events


def test_event_since_entry_boundaries(world):
    world.contact("a")
    world.contact("b")
    world.contact("none")
    entered = NOW - timedelta(days=3)
    ra, rb, rn = world.run("a", entered), world.run("b", entered), world.run("none", entered)
    world.events("a", "order_placed", entered)  # exactly at entry: counts
    world.events("b", "order_placed", entered - timedelta(seconds=1), NOW + timedelta(seconds=1))  # before entry, after now
    world.events("b", "page_view", NOW - timedelta(hours=1))  # another event
    assert world.check({"kind": "event", "event": "order_placed", "since": "entry"}, [ra, rb, rn]) == [True, False, False]


def test_event_since_entry_is_per_run(world):
    world.contact("a")
    early = world.run("a", NOW - timedelta(days=10))
    late = world.run("a", NOW - timedelta(days=1))
    world.events("a", "order_placed", NOW - timedelta(days=5))
    assert world.check({"kind": "event", "event": "order_placed", "since": "entry"}, [early, late]) == [True, False]


def test_event_within_window_boundaries(world):
    for name in ("edge", "outside", "now", "future"):
        world.contact(name)
    runs = [world.run(n) for n in ("edge", "outside", "now", "future")]
    world.events("edge", "visit", NOW - timedelta(days=7))  # exactly at the window start: counts
    world.events("outside", "visit", NOW - timedelta(days=7, seconds=1))
    world.events("now", "visit", NOW)
    world.events("future", "visit", NOW + timedelta(minutes=1))
    assert world.check({"kind": "event", "event": "visit", "within": "P7D"}, runs) == [True, False, True, False]


def test_event_within_months_and_ever(world):
    world.contact("a")
    world.contact("b")
    ra, rb = world.run("a"), world.run("b")
    world.events("a", "visit", datetime(2026, 5, 1, 12, tzinfo=timezone.utc))  # exactly one calendar month before NOW
    world.events("b", "visit", datetime(2020, 1, 1, tzinfo=timezone.utc))
    assert world.check({"kind": "event", "event": "visit", "within": "P1M"}, [ra, rb]) == [True, False]
    assert world.check({"kind": "event", "event": "visit"}, [ra, rb]) == [True, True]


def test_event_min_count(world):
    world.contact("twice")
    world.contact("once")
    rt, ro = world.run("twice"), world.run("once")
    world.events("twice", "order_placed", NOW - timedelta(days=1), NOW - timedelta(days=2))
    world.events("once", "order_placed", NOW - timedelta(days=1))
    c = {"kind": "event", "event": "order_placed", "within": "P30D", "min_count": 2}
    assert world.check(c, [rt, ro]) == [True, False]
    assert world.check({**c, "since": "entry", "within": None}, [rt, ro]) == [True, False]


def test_event_where_filters_properties(world):
    world.contact("big")
    world.contact("small")
    rb, rs = world.run("big"), world.run("small")
    world.events("big", "order_placed", NOW - timedelta(hours=2), properties={"total": 1500, "category": "pizza"})
    world.events("big", "order_placed", NOW - timedelta(hours=3), properties={"total": "1100", "category": "sushi"})
    world.events("small", "order_placed", NOW - timedelta(hours=2), properties={"total": 200, "category": "pizza"})
    where = {"total": {"gte": 1000}}
    assert world.check({"kind": "event", "event": "order_placed", "within": "P1D", "where": where}, [rb, rs]) == [True, False]
    assert world.check({"kind": "event", "event": "order_placed", "since": "entry", "min_count": 2, "where": where},
                       [rb, rs]) == [True, False]
    pizza = {"category": "pizza", "total": {"gte": 1000}}
    assert world.check({"kind": "event", "event": "order_placed", "where": pizza, "min_count": 2}, [rb, rs]) == [False, False]


# ---------------------------------------------------------------- engagement


def test_engagement_statuses_and_implications(world):
    for n in ("clicker", "opener", "delivered", "queued", "bounced", "failed"):
        world.contact(n)
    runs = {n: world.run(n) for n in world.contact_ids}
    world.message(runs["clicker"], "mail", events=["clicked"])
    world.message(runs["opener"], "mail", events=["delivered", "opened"])
    world.message(runs["delivered"], "mail", events=["delivered"])
    world.message(runs["queued"], "mail", sent_at=None, status="pending")
    world.message(runs["bounced"], "mail", events=["bounced"])
    world.message(runs["failed"], "mail", sent_at=None, status="failed")
    order = list(runs.values())

    def engaged(status):
        got = world.check({"kind": "engagement", "node": "mail", "status": status}, order)
        return {n for n, ok in zip(runs, got) if ok}

    assert engaged("sent") == {"clicker", "opener", "delivered", "bounced"}
    assert engaged("clicked") == {"clicker"}
    assert engaged("opened") == {"clicker", "opener"}  # a click implies an open
    assert engaged("delivered") == {"clicker", "opener", "delivered"}  # an open or click proves delivery
    assert engaged("bounced") == {"bounced"}
    assert engaged("failed") == {"failed"}  # the outbox row failed
    assert engaged("unsubscribed") == set()
    assert engaged("replied") == set()


def test_engagement_counts_cascade_steps_of_this_run_and_node_only(world):
    world.contact("a")
    world.contact("b")
    first, second = world.run("a"), world.run("a")  # two runs of one contact
    other = world.run("b")
    world.message(first, "mail")  # the email: not opened
    world.message(first, "mail:1", events=["clicked"])  # its cascade step (an sms): clicked
    world.message(second, "mail", events=["opened"])
    world.message(other, "mail2", events=["opened"])  # another node whose id starts the same
    world.message(other, "other:mail", events=["opened"])  # another node, 'mail' only in the suffix
    c = {"kind": "engagement", "node": "mail", "status": "clicked"}
    assert world.check(c, [first, second, other]) == [True, False, False]
    assert world.check({**c, "status": "opened"}, [first, second, other]) == [True, True, False]
    assert world.check({**c, "status": "sent"}, [first, second, other]) == [True, True, False]


def test_engagement_never_sent(world):
    world.contact("a")
    run = world.run("a")
    for status in ("sent", "delivered", "opened", "clicked", "converted", "failed"):
        assert world.check({"kind": "engagement", "node": "mail", "status": status}, [run]) == [False], status


def test_engagement_converted_by_an_order_after_the_message(world):
    for n in ("buyer", "before", "cancelled", "later", "unsent", "cascade"):
        world.contact(n)
    runs = {n: world.run(n) for n in world.contact_ids}
    sent = NOW - timedelta(hours=5)
    for n in ("buyer", "before", "cancelled", "later"):
        world.message(runs[n], "mail", sent_at=sent)
    world.message(runs["unsent"], "mail", sent_at=None, status="pending")
    world.message(runs["cascade"], "mail", sent_at=sent)
    world.message(runs["cascade"], "mail:1", sent_at=sent + timedelta(hours=1))
    world.order("buyer", sent)  # at the send moment: counts
    world.order("before", sent - timedelta(seconds=1))
    world.order("cancelled", sent + timedelta(hours=1), status="cancelled")
    world.order("later", NOW + timedelta(hours=1))  # after now
    world.order("unsent", NOW - timedelta(hours=1))
    world.order("cascade", sent + timedelta(minutes=30), status="placed")  # after the first message of the cascade
    got = world.check({"kind": "engagement", "node": "mail", "status": "converted"}, list(runs.values()))
    assert {n for n, ok in zip(runs, got) if ok} == {"buyer", "cascade"}


# ---------------------------------------------------------------- segments


def test_segment_membership(world):
    segments.define(msgspec.convert({"key": "t-vips", "name": "VIPs", "condition": {"kind": "tag", "tag": "vip"}}, Segment))
    world.contact("vip", tags=["vip"])
    world.contact("plain")
    rv, rp = world.run("vip"), world.run("plain")
    assert world.check({"kind": "segment", "segment": "t-vips"}, [rv, rp]) == [True, False]
    assert world.check({"kind": "segment", "segment": "t-vips", "member": False}, [rv, rp]) == [False, True]


def test_unknown_segment_is_a_clear_error(world):
    world.contact("a")
    run = world.run("a")
    with pytest.raises(ValueError, match="unknown segment 'no-such-segment'"):
        world.check({"kind": "segment", "segment": "no-such-segment"}, [run])


# ---------------------------------------------------------------- composition and batching


def test_all_any_not(world):
    world.contact("vip-buyer", tags=["vip"])
    world.contact("vip", tags=["vip"])
    world.contact("buyer")
    world.contact("nobody")
    runs = [world.run(n) for n in ("vip-buyer", "vip", "buyer", "nobody")]
    world.events("vip-buyer", "order_placed", NOW - timedelta(hours=1))
    world.events("buyer", "order_placed", NOW - timedelta(hours=1))
    vip = {"kind": "tag", "tag": "vip"}
    bought = {"kind": "event", "event": "order_placed", "since": "entry"}
    assert world.check({"kind": "all", "conditions": [vip, bought]}, runs) == [True, False, False, False]
    assert world.check({"kind": "any", "conditions": [vip, bought]}, runs) == [True, True, True, False]
    assert world.check({"kind": "not", "condition": bought}, runs) == [False, True, False, True]
    assert world.check({"kind": "all", "conditions": [vip, {"kind": "not", "condition": bought}]}, runs) == [False, True, False, False]
    assert world.check({"kind": "all", "conditions": []}, runs) == [True] * 4
    assert world.check({"kind": "any", "conditions": []}, runs) == [False] * 4


def test_a_batch_costs_a_few_queries_not_one_per_run(world, runtime):
    segments.define(msgspec.convert({"key": "t-vips", "name": "VIPs", "condition": {"kind": "tag", "tag": "vip"}}, Segment))
    runs = []
    for i in range(60):
        world.contact(f"c{i}", tags=["vip"] if i % 2 else [])
        runs.append(world.run(f"c{i}"))
        if i % 3 == 0:
            world.events(f"c{i}", "order_placed", NOW - timedelta(hours=1), properties={"total": i})
        if i % 4 == 0:
            world.message(runs[-1], "mail", events=["opened"] if i % 8 == 0 else [])
    condition = {"kind": "any", "conditions": [
        {"kind": "event", "event": "order_placed", "since": "entry", "where": {"total": {"gte": 30}}},
        {"kind": "engagement", "node": "mail", "status": "opened"},
        {"kind": "segment", "segment": "t-vips"},
    ]}
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sa_event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        got = world.check(condition, runs)
    finally:
        sa_event.remove(runtime.engine, "before_cursor_execute", count)
    expected = [(i % 3 == 0 and i >= 30) or i % 8 == 0 or i % 2 == 1 for i in range(60)]
    assert got == expected
    assert len(statements) <= 4, statements  # events, outbox, message events, segment
