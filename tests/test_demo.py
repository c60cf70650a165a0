"""The demo loader fills an empty database once; a second run changes nothing."""

from sqlalchemy import func, select

from kaskad.demo import load_demo
from kaskad.store.models import Contact, Event, FlowVersion, Order


def _counts(runtime):
    with runtime.sessions() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Contact, Order, Event, FlowVersion))


def test_demo_loads_and_is_idempotent(runtime):
    first = load_demo(runtime)
    assert first["contacts"] == 300 and first["orders"] > 300
    after_first = _counts(runtime)
    second = load_demo(runtime)
    assert second["contacts"] == 0 and second["orders"] == 0 and second["events"] == 0
    assert _counts(runtime)[:3] == after_first[:3]
    # Published flows stay published; loading again makes no new versions of an unchanged flow.
    assert _counts(runtime)[3] == after_first[3]
