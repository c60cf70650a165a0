"""A committed event wakes the idle scheduler at once (PostgreSQL LISTEN/NOTIFY), not at its next tick.

The tick here is a minute, so an event dispatched and enrolled within seconds
can only have been woken by the notification. The database stays the source of
truth: the notification carries nothing, the scheduler reads the event rows.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from kaskad.engine.scheduler import Scheduler
from kaskad.ingest.events import EventIn, store_events
from kaskad.store.engine import transaction
from kaskad.store.models import Event, JourneyRun
from kaskad.testing.fixtures import make_runtime

from .helpers import add_contacts, flow_doc, publish

pytestmark = pytest.mark.postgres

CART = flow_doc("cart", [{"id": "end", "kind": "exit"}],
                entry={"kind": "event", "event": "cart_updated", "dedupe": "properties.cart_id"})


def _wait_for(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_committed_event_wakes_the_idle_scheduler(pg_url, tmp_path):
    runtime = make_runtime(pg_url, tmp_path, engine_tick=60.0)
    enqueued: list[list[int]] = []
    scheduler = Scheduler(runtime, lambda ids, token: enqueued.append(ids))
    try:
        add_contacts(runtime, 1, prefix="w")
        publish(runtime, CART)
        scheduler.start()
        assert _wait_for(lambda: scheduler._leader_conn is not None, 10), "the scheduler never took the lead"
        time.sleep(0.5)  # it has ticked once and now idles for a minute
        with transaction(runtime.sessions) as s:
            stored, _, errors = store_events(s, [(0, EventIn(contact="w0", name="cart_updated",
                                                             properties={"cart_id": "k1"}))])
        assert (stored, errors) == (1, [])

        def dispatched() -> bool:
            with runtime.sessions() as s:
                return s.scalar(select(func.count()).select_from(Event).where(Event.dispatched_at.is_(None))) == 0

        assert _wait_for(dispatched, 10), "the event waited for the next tick"
        with runtime.sessions() as s:
            assert s.scalar(select(func.count()).select_from(JourneyRun)) == 1
        assert _wait_for(lambda: sum(map(len, enqueued)) == 1, 10)
    finally:
        scheduler.stop()
        runtime.close()
