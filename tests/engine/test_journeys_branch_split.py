"""Branch and split nodes end to end: every condition kind picks its port, splits are stable and fair."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import msgspec
from sqlalchemy import select

from kaskad import clock, segments
from kaskad.segments.model import Segment
from kaskad.store.engine import transaction
from kaskad.store.models import JourneyRun, MessageEvent

from .journeys import (
    EXIT,
    T0,
    add_contacts,
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


def _port(runtime, cid: int, node: str) -> str:
    return next(p for n, p, o in steps(runtime, run_of(runtime, cid).id) if n == node and o == "passed")


def test_branch_on_attribute_tag_and_segment(runtime, engine):
    segments.define(msgspec.convert(
        {"key": "journey-test-berliners", "name": "Berliners", "condition":
         {"kind": "attribute", "name": "city", "op": "eq", "value": "Berlin"}}, Segment))
    publish(runtime, flow_doc("route", [
        {"id": "route", "kind": "branch", "else": "other", "cases": [
            {"when": {"kind": "attribute", "attribute": "spend", "op": "gte", "value": 1000}, "next": "vip"},
            {"name": "loyal", "when": {"kind": "tag", "tag": "loyal"}, "next": "loyal"},
            {"name": "local", "when": {"kind": "segment", "segment": "journey-test-berliners"}, "next": "local"},
        ]},
        send("vip", "vip"), send("loyal", "loyal"), send("local", "local"), send("other", "other"), EXIT]))
    vip = contact(runtime, "vip", attributes={"spend": 1500}, tags=["loyal"])  # the first case that holds wins
    loyal = contact(runtime, "loyal", attributes={"spend": "999"}, tags=["loyal"])
    local = contact(runtime, "local", attributes={"city": "Berlin"})
    other = contact(runtime, "other", attributes={"spend": "a lot", "city": "Paris"})
    enroll_ids(runtime, "route", [vip, loyal, local, other])
    engine.drain()
    assert statuses(runtime) == {"exited": 4}
    assert [_port(runtime, c, "route") for c in (vip, loyal, local, other)] == ["case:0", "case:loyal", "case:local", "else"]
    assert {n: texts(n) for n in ("vip", "loyal", "local", "other")} == {
        "vip": ["vip"], "loyal": ["loyal"], "local": ["local"], "other": ["other"]}


def test_branch_on_events_since_entry_and_within_a_window(runtime, engine):
    publish(runtime, flow_doc("events", [
        {"id": "pause", "kind": "wait", "for": "P1D", "next": "route"},
        {"id": "route", "kind": "branch", "else": "end", "cases": [
            {"name": "browsed", "when": {"kind": "event", "event": "browsed", "since": "entry"}, "next": "end"},
            {"name": "bought", "when": {"kind": "event", "event": "ordered", "within": "P3D",
                                        "where": {"total": {"gt": 10}}}, "next": "end"},
        ]}, EXIT]))
    since = contact(runtime, "since")
    before = contact(runtime, "before")  # browsed before entering, bought two days ago
    stale = contact(runtime, "stale")  # bought, but five days before the branch
    small = contact(runtime, "small")  # bought within the window, but not enough
    add_event(runtime, before, "browsed", T0 - timedelta(hours=1))
    add_event(runtime, before, "ordered", T0 - timedelta(days=1), total=50)
    add_event(runtime, stale, "ordered", T0 - timedelta(days=4), total=50)
    add_event(runtime, small, "ordered", T0, total=5)
    with clock.travel(T0) as box:
        enroll_ids(runtime, "events", [since, before, stale, small])
        engine.drain()
        add_event(runtime, since, "browsed", T0 + timedelta(hours=3))
        box[0] = T0 + timedelta(days=1)
        engine.drain()
    assert [_port(runtime, c, "route") for c in (since, before, stale, small)] == [
        "case:browsed", "case:bought", "else", "else"]


def test_branch_on_engagement_with_an_earlier_send(runtime, engine):
    publish(runtime, flow_doc("engaged", [
        send("first", "first", next="pause"),
        {"id": "pause", "kind": "wait", "for": "P2D", "next": "route"},
        {"id": "route", "kind": "branch", "else": "nudge", "cases": [
            {"name": "opened", "when": {"kind": "engagement", "node": "first", "status": "opened"}, "next": "thanks"}]},
        send("thanks", "thanks for reading"), send("nudge", "did you see it?"), EXIT]))
    ids = dict(zip(("opener", "clicker", "delivered", "silent"), (contact(runtime, n) for n in
                                                                   ("opener", "clicker", "delivered", "silent"))))
    with clock.travel(T0) as box:
        enroll_ids(runtime, "engaged", list(ids.values()))
        engine.drain()
        rows = {o.contact_id: o for o in outbox(runtime, node_id="first")}
        assert len(rows) == 4 and {o.status for o in rows.values()} == {"sent"}
        with transaction(runtime.sessions) as s:
            for name, status in (("opener", "opened"), ("clicker", "clicked"), ("delivered", "delivered")):
                s.add(MessageEvent(outbox_id=rows[ids[name]].id, contact_id=ids[name], status=status,
                                   at=T0 + timedelta(hours=1), detail={}))
        box[0] = T0 + timedelta(days=2)
        engine.drain()
    assert {n: _port(runtime, c, "route") for n, c in ids.items()} == {
        "opener": "case:opened", "clicker": "case:opened", "delivered": "else", "silent": "else"}
    assert texts("clicker") == ["first", "thanks for reading"]
    assert texts("silent") == ["first", "did you see it?"]


SPLIT = [
    {"id": "ab", "kind": "split", "paths": [
        {"name": "A", "weight": 50, "next": "a"},
        {"name": "B", "weight": 30, "next": "b"},
        {"name": "control", "weight": 20, "holdout": True}]},
    send("a", "variant A"), send("b", "variant B"), EXIT]


def test_split_weights_holdout_and_stats(runtime, engine, api):
    publish(runtime, flow_doc("ab", SPLIT, reentry={"policy": "concurrent"}))
    ids = add_contacts(runtime, 1000)
    enroll_ids(runtime, "ab", ids)
    engine.drain()
    paths = Counter(r.context["split"]["path"] for r in runs(runtime))
    assert sum(paths.values()) == 1000
    for name, weight in (("A", 500), ("B", 300), ("control", 200)):
        assert abs(paths[name] - weight) < 60, paths  # ~4 standard deviations
    held = runs(runtime, status="holdout")
    assert len(held) == paths["control"]
    assert all(r.context["split"] == {"node": "ab", "path": "control", "holdout": True} for r in held)
    held_ids = {r.contact_id for r in held}
    assert not held_ids & {o.contact_id for o in outbox(runtime)}  # the control group receives nothing
    assert len(texts()) == 1000 - len(held)
    assert Counter(texts()) == {"variant A": paths["A"], "variant B": paths["B"]}
    stats = api.get("/api/v1/flows/ab/stats").json()
    assert (stats["holdout"], stats["exited"], stats["active"]) == (paths["control"], paths["A"] + paths["B"], 0)
    assert stats["nodes"]["ab"]["entered"] == 1000
    assert stats["nodes"]["ab"]["ports"] == {f"path:{k}": v for k, v in paths.items()}
    assert stats["nodes"]["a"] == {"entered": paths["A"], "waiting": 0, "failed": 0, "ports": {"next": paths["A"]}}

    # Same contact, same path, run after run.
    first = {r.contact_id: r.context["split"]["path"] for r in runs(runtime)}
    sample = ids[:100]
    enroll_ids(runtime, "ab", sample)
    engine.drain()
    with runtime.sessions() as s:
        again = s.execute(select(JourneyRun.contact_id, JourneyRun.context).where(
            JourneyRun.contact_id.in_(sample)).order_by(JourneyRun.id)).all()
    assert len(again) == 200
    assert all(ctx["split"]["path"] == first[cid] for cid, ctx in again)
    assert len(outbox(runtime)) == (1000 - len(held)) + sum(1 for c in sample if first[c] != "control")
