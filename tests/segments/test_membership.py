"""Membership tracking: a silent first pass, then entered/exited events from incremental and full passes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from kaskad import clock, periodic
from kaskad.segments import jobs, membership
from kaskad.store.engine import transaction
from kaskad.store.models import Contact, Event

T0 = datetime.now(timezone.utc)
BUYERS = {"key": "repeat-buyers", "name": "2+ orders", "condition": {"kind": "orders", "measure": "count", "op": "gte", "value": 2}}


def _order(api, oid, contact, days_ago, status="paid"):
    o = {"id": oid, "contact": contact, "status": status, "currency": "EUR", "amount": "10",
         "placed_at": (T0 - timedelta(days=days_ago)).isoformat()}
    assert api.post("/api/v1/orders", role="integrator", json={"orders": [o]}).status_code == 200


def _moves(runtime):
    """(event name, segment, external id) of the membership events so far."""
    with runtime.sessions() as s:
        q = (select(Event.name, Event.properties, Contact.external_id).join(Contact, Contact.id == Event.contact_id)
             .where(Event.name.in_((membership.ENTERED, membership.EXITED))).order_by(Event.id))
        return [(n, p["segment"], x) for n, p, x in s.execute(q)]


def test_enter_and_exit_events(api, runtime):
    with clock.travel(T0) as at:  # ingest and the passes read one clock
        def run(fn, moved):
            at[0] = T0 + moved
            with transaction(runtime.sessions) as s:
                return fn(s, at[0])

        api.post("/api/v1/segments", json=BUYERS)
        _order(api, "a1", "ann", 5)
        _order(api, "a2", "ann", 4)
        _order(api, "b1", "bob", 3)
        run(membership.full_passes, timedelta(minutes=1))  # the baseline: ann is a member, silently
        with runtime.sessions() as s:
            ann = s.scalar(select(Contact.id).where(Contact.external_id == "ann"))
            assert membership.members_of(s, "repeat-buyers") == {ann}
        assert _moves(runtime) == []

        _order(api, "b2", "bob", 1)  # bob becomes a repeat buyer
        got = run(membership.incremental_pass, timedelta(minutes=1, seconds=1))
        assert got["repeat-buyers"] == (1, 0)
        assert _moves(runtime) == [("segment_entered", "repeat-buyers", "bob")]
        # nothing new: nothing happens, even though recent events are read again while they settle
        run(membership.incremental_pass, timedelta(minutes=1, seconds=5))
        run(membership.incremental_pass, timedelta(minutes=5))
        assert len(_moves(runtime)) == 1

        _order(api, "a2", "ann", 4, status="refunded")  # ann drops to one counted order
        run(membership.incremental_pass, timedelta(minutes=6))
        assert _moves(runtime)[1:] == [("segment_exited", "repeat-buyers", "ann")]

        # time alone: 95 days on, everyone's last order is over 90 days old; only the full pass sees it
        assert run(membership.incremental_pass, timedelta(days=95)) == {}  # nobody touched
        run(membership.full_passes, timedelta(days=95, minutes=1))
        assert sorted(_moves(runtime)[2:]) == [("segment_entered", "sleeping-90d", "ann"), ("segment_entered", "sleeping-90d", "bob")]
        _order(api, "c1", "cid", 200)  # a late-reported old order: cid enters on the next incremental pass
        run(membership.incremental_pass, timedelta(days=95, minutes=2))
        assert _moves(runtime)[4:] == [("segment_entered", "sleeping-90d", "cid")]


def test_jobs_are_registered(runtime):
    periodic.load_jobs()
    assert periodic.JOBS["segments.membership"].fn is jobs.membership_job
    assert periodic.JOBS["segments.full_pass"].fn is jobs.full_pass_job
    now = datetime.now(timezone.utc)
    jobs.full_pass_job(runtime, now)
    jobs.membership_job(runtime, now)
