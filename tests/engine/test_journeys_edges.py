"""Journeys at the edges: cascades, erased contacts, the step budget, frequency caps."""

from __future__ import annotations

from datetime import timedelta

from kaskad import clock
from kaskad.delivery.policy import Caps, DeliverySettings
from kaskad.store.engine import transaction
from kaskad.store.models import MessageEvent

from .journeys import EXIT, T0, contact, enroll_ids, flow_doc, outbox, publish, run_of, send, statuses, steps, texts


def test_cascade_sends_the_next_step_only_to_those_who_did_not_respond(runtime, engine):
    publish(runtime, flow_doc("cascade", [
        send("mail", "first", cascade=[{"after": "PT4H", "channel": "test", "message": {"text": "second"}}]), EXIT]))
    reader, silent = contact(runtime, "reader"), contact(runtime, "silent")
    with clock.travel(T0) as box:
        enroll_ids(runtime, "cascade", [reader, silent])
        engine.drain()
        assert statuses(runtime) == {"waiting": 2}
        [row] = outbox(runtime, contact_id=reader)
        with transaction(runtime.sessions) as s:
            s.add(MessageEvent(outbox_id=row.id, contact_id=reader, status="opened", at=T0 + timedelta(hours=1), detail={}))
        box[0] = T0 + timedelta(hours=4)
        engine.drain()
    assert statuses(runtime) == {"exited": 2}
    assert texts("reader") == ["first"]
    assert texts("silent") == ["first", "second"]
    run = run_of(runtime, silent)
    assert [o.key for o in outbox(runtime, contact_id=silent)] == [f"run:{run.id}:mail", f"run:{run.id}:mail:1"]


def test_a_contact_erased_while_waiting_leaves_the_journey(runtime, engine, api):
    publish(runtime, flow_doc("erase", [
        {"id": "pause", "kind": "wait", "for": "P1D", "next": "mail"}, send("mail", "hello"), EXIT]))
    ann = contact(runtime, "ann")
    with clock.travel(T0) as box:
        enroll_ids(runtime, "erase", [ann])
        engine.drain()
        assert api.delete("/api/v1/contacts/ann").status_code == 200
        box[0] = T0 + timedelta(days=1)
        engine.drain()
    run = run_of(runtime, ann)
    assert run.status == "exited" and texts() == [] and outbox(runtime) == []
    assert steps(runtime, run.id)[-1] == ("pause", None, "exited")


def test_runs_beyond_the_step_budget_continue_in_a_new_message(runtime, engine, api):
    runtime.settings.engine_steps = 2
    publish(runtime, flow_doc("long", [
        {"id": "a", "kind": "update", "add_tags": ["a"], "next": "b"},
        {"id": "b", "kind": "update", "add_tags": ["b"], "next": "c"},
        {"id": "c", "kind": "update", "add_tags": ["c"], "next": "mail"},
        send("mail", "{{ contact.tags | join(',') }}"), EXIT]))
    ids = [contact(runtime, f"c{i}") for i in range(3)]
    enroll_ids(runtime, "long", ids)
    engine.drain()
    assert statuses(runtime) == {"exited": 3}
    assert texts() == ["a,b,c"] * 3
    nodes = api.get("/api/v1/flows/long/stats").json()["nodes"]
    assert {n: v["entered"] for n, v in nodes.items()} == {"a": 3, "b": 3, "c": 3, "mail": 3, "end": 3}


def test_a_frequency_cap_skips_or_delays(runtime, engine):
    runtime.extras["delivery_settings"] = DeliverySettings(caps={"test": Caps(per_day=1)})
    publish(runtime, flow_doc("capped", [
        send("one", "one", next="two"), send("two", "two (skipped)", next="three"),
        send("three", "three (delayed)", on_cap="delay"), EXIT]))
    ann = contact(runtime, "ann")
    with clock.travel(T0) as box:
        enroll_ids(runtime, "capped", [ann])
        engine.drain()
        assert texts() == ["one"]
        run = run_of(runtime, ann)
        assert (run.status, run.node_id) == ("waiting", "three")
        assert run.wake_at == T0 + timedelta(days=1)
        box[0] = run.wake_at
        engine.drain()
    assert texts() == ["one", "three (delayed)"]
    assert [(o.node_id, o.status) for o in outbox(runtime)] == [("one", "sent"), ("two", "skipped"), ("three", "sent")]
    assert run_of(runtime, ann).status == "exited"


def test_runs_finish_on_the_version_they_entered(runtime, engine, api):
    def version(text: str) -> dict:
        return flow_doc("versions", [{"id": "pause", "kind": "wait", "for": "P1D", "next": "mail"},
                                     send("mail", text), EXIT])

    assert publish(runtime, version("from v1")) == 1
    old, new = contact(runtime, "old"), contact(runtime, "new")
    with clock.travel(T0) as box:
        enroll_ids(runtime, "versions", [old])
        engine.drain()
        assert publish(runtime, version("from v2")) == 2
        enroll_ids(runtime, "versions", [new])
        engine.drain()
        box[0] = T0 + timedelta(days=1)
        engine.drain()
    assert (texts("old"), texts("new")) == (["from v1"], ["from v2"])
    journeys = api.get("/api/v1/contacts/old").json()["journeys"]
    assert [(j["version"], j["status"]) for j in journeys] == [(1, "exited")]
    assert api.get("/api/v1/flows/versions/stats").json()["nodes"]["mail"]["entered"] == 2
    assert api.get("/api/v1/flows/versions/stats?version=2").json()["nodes"]["mail"]["entered"] == 1
