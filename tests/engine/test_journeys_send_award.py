"""Send, award, update and exit nodes end to end: what is sent, to whom, when, and what it says."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kaskad import clock
from kaskad.delivery.policy import DeliverySettings, QuietHours
from kaskad_mechanics import noop

from .journeys import EXIT, T0, add_event, contact, enroll_ids, flow_doc, outbox, publish, run_of, send, steps, texts

UTC = timezone.utc


def test_entry_event_contact_and_award_data_reach_the_template(runtime, engine, api):
    publish(runtime, flow_doc("welcome", [
        {"id": "gift", "kind": "award", "mechanic": "noop", "config": {"label": "a free coffee"}, "next": "mail"},
        send("mail", "Hi {{ contact.attributes.first_name }}, thanks for {{ event.properties.item }}: "
                     "{{ award.label }} ({{ awards.gift.label }}) from {{ flow.key }}"),
        EXIT], entry={"kind": "event", "event": "signed_up"}))
    ann = contact(runtime, "ann", attributes={"first_name": "Ann"})
    noop.AWARDED.clear()
    with clock.travel(T0):
        add_event(runtime, ann, "signed_up", T0, item="the newsletter")
        engine.drain()
    run = run_of(runtime, ann)
    assert run.status == "exited"
    assert texts("ann") == ["Hi Ann, thanks for the newsletter: a free coffee (a free coffee) from welcome"]
    assert list(noop.AWARDED) == [f"run:{run.id}:gift"]
    [row] = outbox(runtime)
    assert (row.key, row.node_id, row.channel, row.status, row.sent_at) == (f"run:{run.id}:mail", "mail", "test", "sent", T0)
    journeys = api.get("/api/v1/contacts/ann").json()["journeys"]
    assert [(j["flow"], j["status"], j["node"]) for j in journeys] == [("welcome", "exited", "end")]
    assert [(s["node"], s["port"], s["outcome"]) for s in journeys[0]["steps"]] == [
        ("gift", "next", "passed"), ("mail", "next", "passed"), ("end", None, "exited")]


def test_send_without_consent_is_skipped_and_the_run_moves_on(runtime, engine):
    publish(runtime, flow_doc("consent", [
        {"id": "mail", "kind": "send", "channel": "email", "next": "note",
         "message": {"subject": "Hello", "html": "<p>Hello {{ contact.external_id }}</p>"}},
        send("note", "after the email"), EXIT]))
    nobody = contact(runtime, "nobody", email="nobody@example.com")
    enroll_ids(runtime, "consent", [nobody])
    engine.drain()
    run = run_of(runtime, nobody)
    assert run.status == "exited"
    mail = outbox(runtime, channel="email")
    assert [(o.status, o.error, o.key) for o in mail] == [("skipped", "no consent for email", f"run:{run.id}:mail")]
    assert mail[0].sent_at is None
    assert ("mail", "next", "passed") in steps(runtime, run.id)
    assert texts() == ["after the email"]  # the email itself went nowhere


def test_quiet_hours_delay_a_send_to_the_contacts_morning(runtime, engine):
    runtime.extras["delivery_settings"] = DeliverySettings(quiet_hours=QuietHours(start="21:00", end="09:00"))
    publish(runtime, flow_doc("late", [send("mail", "good morning"), EXIT]))
    london = contact(runtime, "london", timezone="Europe/London")
    tokyo = contact(runtime, "tokyo", timezone="Asia/Tokyo")
    honolulu = contact(runtime, "honolulu", timezone="Pacific/Honolulu")
    night = datetime(2026, 1, 14, 23, 0, tzinfo=UTC)  # 23:00 London, 08:00 Tokyo, 13:00 Honolulu
    with clock.travel(night) as box:
        enroll_ids(runtime, "late", [london, tokyo, honolulu])
        engine.drain()
        assert texts() == ["good morning"] and texts("honolulu") == ["good morning"]
        assert run_of(runtime, tokyo).wake_at == datetime(2026, 1, 15, 0, 0, tzinfo=UTC)
        assert run_of(runtime, london).wake_at == datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
        assert {o.contact_id for o in outbox(runtime)} == {honolulu}  # no row until it may go
        box[0] = datetime(2026, 1, 15, 0, 0, tzinfo=UTC)
        engine.drain()
        assert texts("tokyo") == ["good morning"] and texts("london") == []
        box[0] = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
        engine.drain()
    assert texts("london") == ["good morning"]
    assert [o.sent_at for o in outbox(runtime, contact_id=london)] == [datetime(2026, 1, 15, 9, 0, tzinfo=UTC)]
    assert run_of(runtime, london).status == "exited"


def test_melting_discount_shows_its_current_percent_day_by_day(runtime, engine):
    publish(runtime, flow_doc("melt", [
        {"id": "code", "kind": "award", "mechanic": "melting_discount", "next": "day0",
         "config": {"steps": [{"percent": 30, "for": "P1D"}, {"percent": 20, "for": "P1D"}, {"percent": 10, "for": "P1D"}]}},
        send("day0", "{{ award.code }} {{ award.percent }}%", next="w1"),
        {"id": "w1", "kind": "wait", "for": "PT25H", "next": "day1"},
        send("day1", "{{ award.code }} {{ award.percent }}%", next="w2"),
        {"id": "w2", "kind": "wait", "for": "PT24H", "next": "day2"},
        send("day2", "{{ award.code }} {{ award.percent }}%", next="w3"),
        {"id": "w3", "kind": "wait", "for": "PT24H", "next": "day3"},
        send("day3", "{{ award.code }} {{ award.percent }}% {{ award.melted }}"),
        EXIT]))
    ann = contact(runtime, "ann")
    with clock.travel(T0) as box:
        enroll_ids(runtime, "melt", [ann])
        engine.drain()
        for hours in (25, 49, 73):
            box[0] = T0 + timedelta(hours=hours)
            engine.drain()
    run = run_of(runtime, ann)
    assert run.status == "exited"
    code = run.context["awards"]["code"]["code"]
    assert code.startswith("MELT-")
    assert texts() == [f"{code} 30%", f"{code} 20%", f"{code} 10%", f"{code} 0% True"]


def test_update_node_changes_the_contact(runtime, engine, api):
    publish(runtime, flow_doc("tagger", [
        {"id": "mark", "kind": "update", "set": {"stage": "onboarded", "score": 5}, "unset": ["trial"],
         "add_tags": ["onboarded"], "remove_tags": ["new"], "next": "mail"},
        send("mail", "{{ contact.attributes.stage }} {{ contact.tags | join(',') }}"), EXIT]))
    ann = contact(runtime, "ann", attributes={"trial": True, "plan": "free"}, tags=["new", "beta"])
    enroll_ids(runtime, "tagger", [ann])
    engine.drain()
    body = api.get("/api/v1/contacts/ann").json()
    assert body["attributes"] == {"plan": "free", "stage": "onboarded", "score": 5}
    assert sorted(body["tags"]) == ["beta", "onboarded"]
    assert texts() == ["onboarded beta,onboarded"]  # later nodes see the change
    assert body["journeys"][0]["status"] == "exited"


def test_stats_count_waiting_runs_per_node(runtime, engine, api):
    publish(runtime, flow_doc("counted", [
        send("hello", "hello", next="pause"),
        {"id": "pause", "kind": "wait", "for": "P1D", "next": "end"}, EXIT]))
    ids = [contact(runtime, f"c{i}") for i in range(3)]
    with clock.travel(T0) as box:
        enroll_ids(runtime, "counted", ids)
        engine.drain()
        mid = api.get("/api/v1/flows/counted/stats").json()
        assert (mid["active"], mid["waiting"], mid["exited"]) == (3, 3, 0)
        assert mid["nodes"]["pause"] == {"entered": 3, "waiting": 3, "failed": 0, "ports": {}}
        assert mid["nodes"]["hello"]["ports"] == {"next": 3}
        box[0] = T0 + timedelta(days=1)
        engine.drain()
    done = api.get("/api/v1/flows/counted/stats").json()
    assert (done["active"], done["waiting"], done["exited"]) == (0, 0, 3)
    assert done["nodes"]["pause"] == {"entered": 3, "waiting": 0, "failed": 0, "ports": {"next": 3}}
    assert done["nodes"]["end"]["entered"] == 3
