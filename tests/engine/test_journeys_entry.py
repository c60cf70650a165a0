"""Entering and leaving journeys end to end: event entries with dedupe, the enroll API,
re-entry policies, and goals that convert a run wherever it stands."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import msgspec
from sqlalchemy import func, select

from kaskad import clock
from kaskad.flow import service
from kaskad.store.engine import transaction
from kaskad.store.models import Event, JourneyRun
from kaskad_channels import test as test_channel

from .journeys import (
    EXIT,
    T0,
    add_event,
    contact,
    enroll_ids,
    flow_doc,
    outbox,
    publish,
    run_of,
    runs,
    send,
    statuses,
    steps,
    texts,
)

CART = {"kind": "event", "event": "cart_updated", "dedupe": "properties.cart_id", "where": {"total": {"gt": 0}}}


def test_event_entry_dedupes_on_the_entry_key(runtime, engine):
    publish(runtime, flow_doc("cart", [send("mail", "your cart {{ event.properties.cart_id }}"), EXIT],
                              entry=CART, reentry={"policy": "concurrent"}))
    ann, bob, eve = contact(runtime, "ann"), contact(runtime, "bob"), contact(runtime, "eve")
    with clock.travel(T0) as box:
        add_event(runtime, ann, "cart_updated", T0, cart_id="k1", total=10)
        add_event(runtime, ann, "cart_updated", T0, cart_id="k1", total=20)  # the same cart again
        add_event(runtime, bob, "cart_updated", T0, cart_id="k1", total=10)  # another contact's "k1"
        add_event(runtime, eve, "cart_updated", T0, cart_id="k9", total=0)  # fails `where`
        add_event(runtime, eve, "page_viewed", T0, cart_id="k8", total=5)  # another event
        engine.drain()
        box[0] = T0 + timedelta(hours=1)
        add_event(runtime, ann, "cart_updated", box[0], cart_id="k1", total=30)  # in a later batch: still deduped
        add_event(runtime, ann, "cart_updated", box[0], cart_id="k2", total=30)  # a new cart: a new run
        engine.drain()
    assert Counter(r.contact_id for r in runs(runtime)) == {ann: 2, bob: 1}
    assert statuses(runtime) == {"exited": 3}
    assert sorted(texts("ann")) == ["your cart k1", "your cart k2"]
    assert texts("bob") == ["your cart k1"]
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Event).where(Event.dispatched_at.is_(None))) == 0


def test_event_entry_with_policy_once_enters_once(runtime, engine):
    publish(runtime, flow_doc("cart-once", [send("mail", "cart"), EXIT], entry=CART))
    ann = contact(runtime, "ann")
    add_event(runtime, ann, "cart_updated", T0, cart_id="k1", total=10)
    add_event(runtime, ann, "cart_updated", T0, cart_id="k2", total=10)
    engine.drain()
    add_event(runtime, ann, "cart_updated", T0, cart_id="k3", total=10)
    engine.drain()
    assert len(runs(runtime)) == 1 and texts() == ["cart"]


def test_event_entry_dedupes_on_a_bare_property_path(runtime, engine):
    """``dedupe`` may name a property without the ``properties.`` prefix, whatever its name starts with."""
    entry = {"kind": "event", "event": "list_joined", "dedupe": "namespace_id"}
    publish(runtime, flow_doc("lists", [send("mail", "joined {{ event.properties.namespace_id }}"), EXIT],
                              entry=entry, reentry={"policy": "concurrent"}))
    ann = contact(runtime, "ann")
    for namespace in ("n1", "n1", "n2"):
        add_event(runtime, ann, "list_joined", T0, namespace_id=namespace)
    engine.drain()
    assert sorted(texts()) == ["joined n1", "joined n2"]
    assert sorted(r.dedupe_key for r in runs(runtime)) == [f"{ann}:e:n1", f"{ann}:e:n2"]


def test_enroll_api(runtime, engine, api):
    publish(runtime, flow_doc("promo", [send("mail", "promo"), EXIT]))
    for name in ("ann", "bob", "cid", "dan"):
        contact(runtime, name)
    r = api.post("/api/v1/flows/promo/enroll", json={"contacts": ["ann", "bob", "ghost", "ann"]}, role="integrator")
    assert r.status_code == 200, r.text
    assert r.json() == {"enrolled": 2, "skipped": 1, "unknown": ["ghost"]}
    r = api.post("/api/v1/flows/promo/enroll", json={"contacts": ["ann"]}, role="marketer")
    assert r.json() == {"enrolled": 0, "skipped": 1, "unknown": []}  # policy once
    r = api.post("/api/v1/flows/promo/enroll", json={"all": True})
    assert r.json() == {"enrolled": 2, "skipped": 2, "unknown": []}
    engine.drain()
    assert sorted(m.recipient.external_id for m in test_channel.SENT) == ["ann", "bob", "cid", "dan"]


def test_enroll_api_refuses_unpublished_flows_and_bad_bodies(runtime, api):
    doc = flow_doc("draft", [EXIT])
    with transaction(runtime.sessions) as s:
        assert service.save(s, runtime.registry, msgspec.json.encode(doc)).valid
    contact(runtime, "ann")
    r = api.post("/api/v1/flows/draft/enroll", json={"contacts": ["ann"]})
    assert r.status_code == 409 and "no published version" in r.json()["detail"]
    assert api.post("/api/v1/flows/nope/enroll", json={"all": True}).status_code == 409
    publish(runtime, doc)
    for body in ({}, {"contacts": ["ann"], "all": True}, {"contacts": "ann"}, {"who": ["ann"]}):
        r = api.post("/api/v1/flows/draft/enroll", json=body)
        assert r.status_code == 400, (body, r.text)
    r = api.post("/api/v1/flows/draft/enroll", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert runs(runtime) == []


def test_reentry_once_and_concurrent(runtime, engine):
    publish(runtime, flow_doc("once", [{"id": "pause", "kind": "wait", "for": "P1D", "next": "end"}, EXIT]))
    publish(runtime, flow_doc("many", [{"id": "pause", "kind": "wait", "for": "P1D", "next": "end"}, EXIT],
                              reentry={"policy": "concurrent"}))
    ann = contact(runtime, "ann")
    with clock.travel(T0) as box:
        assert enroll_ids(runtime, "once", [ann]).enrolled == 1
        assert enroll_ids(runtime, "many", [ann]).enrolled == 1
        engine.drain()
        assert enroll_ids(runtime, "many", [ann]).enrolled == 1  # while one is in progress
        box[0] = T0 + timedelta(days=30)
        engine.drain()
        assert enroll_ids(runtime, "once", [ann]).enrolled == 0  # finished long ago: still once
    with runtime.sessions() as s:
        by_flow = dict(s.execute(select(JourneyRun.flow_id, func.count()).group_by(JourneyRun.flow_id)).all())
    assert sorted(by_flow.values()) == [1, 2]


def test_reentry_after_a_cooldown(runtime, engine):
    publish(runtime, flow_doc("cool", [{"id": "pause", "kind": "wait", "for": "P2D", "next": "end"}, EXIT],
                              reentry={"policy": "after", "cooldown": "P7D"}))
    ann = contact(runtime, "ann")
    with clock.travel(T0) as box:
        assert enroll_ids(runtime, "cool", [ann]).enrolled == 1
        engine.drain()
        box[0] = T0 + timedelta(days=1)
        assert enroll_ids(runtime, "cool", [ann]).enrolled == 0  # a run is in progress
        box[0] = T0 + timedelta(days=3)
        engine.drain()
        assert statuses(runtime) == {"exited": 1}
        assert enroll_ids(runtime, "cool", [ann]).enrolled == 0  # finished, but inside the cooldown
        box[0] = T0 + timedelta(days=7, seconds=1)
        assert enroll_ids(runtime, "cool", [ann]).enrolled == 1  # the cooldown has passed
        assert enroll_ids(runtime, "cool", [ann]).enrolled == 0  # and it starts again
    assert len(runs(runtime)) == 2


def test_goal_converts_a_run_wherever_it_stands(runtime, engine, api):
    publish(runtime, flow_doc("winback", [
        {"id": "long", "kind": "wait", "for": "P10D", "next": "mail"}, send("mail", "come back"), EXIT],
        goal={"event": "purchased", "within": "P3D", "where": {"total": {"gte": 1}}}))
    quick, late, before, free = (contact(runtime, n) for n in ("quick", "late", "before", "free"))
    with clock.travel(T0) as box:
        enroll_ids(runtime, "winback", [quick, late, before, free])
        engine.drain()
        add_event(runtime, before, "purchased", T0 - timedelta(hours=1), total=5)  # before entry
        box[0] = T0 + timedelta(days=1)
        add_event(runtime, quick, "purchased", box[0], total=5)
        add_event(runtime, free, "purchased", box[0], total=0)  # fails the goal's `where`
        engine.drain()
        box[0] = T0 + timedelta(days=5)
        add_event(runtime, late, "purchased", box[0], total=5)  # outside `within`
        engine.drain()
        box[0] = T0 + timedelta(days=10)
        engine.drain()
    won = run_of(runtime, quick)
    assert won.status == "converted" and won.finished_at == T0 + timedelta(days=1)
    assert won.context["converted_at"] == (T0 + timedelta(days=1)).isoformat()
    with runtime.sessions() as s:
        goal_id = s.scalar(select(Event.id).where(Event.contact_id == quick, Event.name == "purchased"))
    assert won.context["goal_event_id"] == goal_id
    assert steps(runtime, won.id)[-1] == ("long", None, "exited")
    assert [run_of(runtime, c).status for c in (late, before, free)] == ["exited"] * 3
    assert texts("quick") == [] and len(texts()) == 3
    assert {o.contact_id for o in outbox(runtime)} == {late, before, free}
    stats = api.get("/api/v1/flows/winback/stats").json()
    assert (stats["converted"], stats["exited"], stats["active"]) == (1, 3, 0)
    journeys = api.get("/api/v1/contacts/quick").json()["journeys"]
    assert journeys[0]["status"] == "converted"
