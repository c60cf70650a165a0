"""Wait nodes end to end: durations, local time windows across DST changes, date targets, events."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kaskad import clock

from .journeys import EXIT, T0, add_event, contact, enroll_ids, flow_doc, publish, run_of, send, steps, texts

UTC = timezone.utc


def test_wait_for_a_duration_then_send(runtime, engine):
    publish(runtime, flow_doc("pause", [
        {"id": "pause", "kind": "wait", "for": "P2D", "next": "mail"}, send("mail", "after two days"), EXIT]))
    cid = contact(runtime)
    with clock.travel(T0) as box:
        enroll_ids(runtime, "pause", [cid])
        engine.drain()
        run = run_of(runtime, cid)
        assert (run.status, run.node_id, run.wake_at) == ("waiting", "pause", T0 + timedelta(days=2))
        box[0] = T0 + timedelta(days=2, seconds=-1)
        engine.drain()
        assert run_of(runtime, cid).status == "waiting" and texts() == []
        box[0] = T0 + timedelta(days=2)
        engine.drain()
    run = run_of(runtime, cid)
    assert run.status == "exited"
    assert texts() == ["after two days"]
    assert steps(runtime, run.id) == [("pause", None, "waiting"), ("pause", "next", "passed"),
                                      ("mail", "next", "passed"), ("end", None, "exited")]


def _window_flow(runtime, key: str) -> None:
    publish(runtime, flow_doc(key, [
        {"id": "morning", "kind": "wait", "until_time": {"from": "09:00", "to": "10:00"}, "next": "mail"},
        send("mail", "good morning {{ contact.external_id }}"), EXIT]))


def _wake_and_check(runtime, engine, box, cid: int, opens: datetime) -> None:
    assert run_of(runtime, cid).wake_at == opens
    box[0] = opens - timedelta(minutes=1)
    engine.drain()
    assert run_of(runtime, cid).status == "waiting"
    box[0] = opens
    engine.drain()
    assert run_of(runtime, cid).status == "exited"


def test_time_window_in_the_contacts_zone_across_spring_forward(runtime, engine):
    """Berlin moves to CEST on Sun 2026-03-29: 09:00 local is 07:00 UTC that day, 08:00 UTC the day before."""
    _window_flow(runtime, "morning")
    berlin = contact(runtime, "berlin", timezone="Europe/Berlin")
    utc = contact(runtime, "utc", timezone="UTC")
    start = datetime(2026, 3, 28, 10, 30, tzinfo=UTC)  # 11:30 CET: today's window has closed
    with clock.travel(start) as box:
        enroll_ids(runtime, "morning", [berlin, utc])
        engine.drain()
        assert run_of(runtime, utc).wake_at == datetime(2026, 3, 29, 9, 0, tzinfo=UTC)
        _wake_and_check(runtime, engine, box, berlin, datetime(2026, 3, 29, 7, 0, tzinfo=UTC))
        assert texts() == ["good morning berlin"]


def test_time_window_across_fall_back_in_new_york(runtime, engine):
    """New York returns to EST on Sun 2026-11-01: 09:00 local is 14:00 UTC that day (13:00 UTC the day before)."""
    _window_flow(runtime, "morning-ny")
    ny = contact(runtime, "ny", timezone="America/New_York")
    inside = contact(runtime, "inside", timezone="America/New_York")
    with clock.travel(datetime(2026, 10, 31, 15, 0, tzinfo=UTC)) as box:  # 11:00 EDT
        enroll_ids(runtime, "morning-ny", [ny])
        engine.drain()
        _wake_and_check(runtime, engine, box, ny, datetime(2026, 11, 1, 14, 0, tzinfo=UTC))
        box[0] = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)  # 09:30 EST: inside the window, goes on at once
        enroll_ids(runtime, "morning-ny", [inside])
        engine.drain()
        assert run_of(runtime, inside).status == "exited"
    assert sorted(texts()) == ["good morning inside", "good morning ny"]


def test_wait_for_a_day_is_a_calendar_day_on_the_contacts_clock(runtime, engine):
    publish(runtime, flow_doc("day", [{"id": "day", "kind": "wait", "for": "P1D", "next": "end"}, EXIT]))
    berlin = contact(runtime, "berlin", timezone="Europe/Berlin")
    with clock.travel(datetime(2026, 3, 28, 9, 0, tzinfo=UTC)):  # 10:00 CET
        enroll_ids(runtime, "day", [berlin])
        engine.drain()
    # 10:00 CEST the next day: only 23 hours later
    assert run_of(runtime, berlin).wake_at == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)


def test_wait_until_three_days_before_the_birthday(runtime, engine):
    publish(runtime, flow_doc("birthday", [
        {"id": "before", "kind": "wait", "next": "mail",
         "until_date": {"attribute": "birthday", "offset": "-P3D", "at": "10:00"}},
        send("mail", "your birthday is coming"), EXIT]))
    soon = contact(runtime, "soon", timezone="America/New_York", attributes={"birthday": "1990-03-10"})
    passed = contact(runtime, "passed", timezone="UTC", attributes={"birthday": "1985-01-15"})
    unknown = contact(runtime, "unknown", attributes={"birthday": "someday"})
    with clock.travel(T0) as box:  # 2026-03-02
        enroll_ids(runtime, "birthday", [soon, passed, unknown])
        engine.drain()
        target = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)  # 10:00 EST on March 7
        assert run_of(runtime, soon).wake_at == target
        assert run_of(runtime, passed).wake_at == datetime(2027, 1, 12, 10, 0, tzinfo=UTC)  # next year's
        no_date = run_of(runtime, unknown)
        assert no_date.status == "exited"  # no usable date: goes on at once
        assert steps(runtime, no_date.id)[0] == ("before", "next", "passed")
        assert texts() == ["your birthday is coming"]
        box[0] = target
        engine.drain()
    assert run_of(runtime, soon).status == "exited"
    assert run_of(runtime, passed).status == "waiting"
    assert texts("soon") == ["your birthday is coming"]


def _event_wait_flow(runtime) -> None:
    publish(runtime, flow_doc("await", [
        {"id": "await", "kind": "wait", "next": "thanks", "on_timeout": "nudge",
         "until_event": {"event": "order_placed", "timeout": "P1D", "where": {"total": {"gte": 100}}}},
        send("thanks", "thanks {{ contact.external_id }}"),
        send("nudge", "still thinking, {{ contact.external_id }}?"),
        EXIT]))


def test_wait_for_an_event_both_ports(runtime, engine):
    _event_wait_flow(runtime)
    buyer = contact(runtime, "buyer")
    small = contact(runtime, "small")  # buys, but below the `where` threshold
    early = contact(runtime, "early")  # bought before the wait started
    idle = contact(runtime, "idle")
    with clock.travel(T0) as box:
        enroll_ids(runtime, "await", [buyer, small, early, idle])
        engine.drain()
        box[0] = T0 + timedelta(hours=2)
        add_event(runtime, buyer, "order_placed", T0 + timedelta(hours=1), total=120)
        add_event(runtime, small, "order_placed", T0 + timedelta(hours=1), total=50)
        add_event(runtime, early, "order_placed", T0 - timedelta(hours=1), total=500)
        add_event(runtime, idle, "page_viewed", T0 + timedelta(hours=1), total=500)
        engine.drain()
        woken = run_of(runtime, buyer)
        assert woken.status == "exited"
        assert woken.context["wake_event"]["properties"] == {"total": 120}
        assert [run_of(runtime, c).status for c in (small, early, idle)] == ["waiting"] * 3
        assert texts() == ["thanks buyer"]
        box[0] = T0 + timedelta(days=1)
        engine.drain()
    assert steps(runtime, woken.id)[:2] == [("await", None, "waiting"), ("await", "next", "passed")]
    for cid, name in ((small, "small"), (early, "early"), (idle, "idle")):
        run = run_of(runtime, cid)
        assert run.status == "exited"
        assert ("await", "on_timeout", "passed") in steps(runtime, run.id)
        assert texts(name) == [f"still thinking, {name}?"]


def test_an_event_after_the_timeout_changes_nothing(runtime, engine):
    _event_wait_flow(runtime)
    late = contact(runtime, "late")
    with clock.travel(T0) as box:
        enroll_ids(runtime, "await", [late])
        engine.drain()
        box[0] = T0 + timedelta(days=2)
        engine.drain()
        add_event(runtime, late, "order_placed", box[0], total=1000)
        engine.drain()
    run = run_of(runtime, late)
    assert run.status == "exited"
    assert [s for s in steps(runtime, run.id) if s[0] == "await"] == [("await", None, "waiting"),
                                                                     ("await", "on_timeout", "passed")]
    assert texts() == ["still thinking, late?"]


def test_office_hours_window_skips_the_weekend(runtime, engine):
    publish(runtime, flow_doc("office", [
        {"id": "office", "kind": "wait", "next": "end",
         "until_time": {"from": "09:00", "to": "18:00", "days": ["mon", "tue", "wed", "thu", "fri"]}}, EXIT]))
    late_friday = contact(runtime, "friday", timezone="Europe/Berlin")
    with clock.travel(datetime(2026, 3, 6, 18, 0, tzinfo=UTC)) as box:  # Fri 19:00 in Berlin
        enroll_ids(runtime, "office", [late_friday])
        engine.drain()
        _wake_and_check(runtime, engine, box, late_friday, datetime(2026, 3, 9, 8, 0, tzinfo=UTC))  # Mon 09:00 CET


def test_contacts_without_a_timezone_wait_in_the_configured_default_zone(runtime, engine, monkeypatch):
    """KASKAD_DELIVERY's default_timezone applies to waits, also before any send has read the settings."""
    monkeypatch.setenv("KASKAD_DELIVERY", '{"default_timezone": "America/New_York"}')
    runtime.extras.pop("delivery_settings", None)
    _window_flow(runtime, "zoneless")
    nowhere = contact(runtime, "nowhere")
    with clock.travel(T0) as box:  # 09:00 UTC is 04:00 in New York
        enroll_ids(runtime, "zoneless", [nowhere])
        engine.drain()
        _wake_and_check(runtime, engine, box, nowhere, datetime(2026, 3, 2, 14, 0, tzinfo=UTC))  # 09:00 EST
