"""The event ``where`` filter language, on SQLite (json_extract) and PostgreSQL (JSONB)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from kaskad.segments.where import check, compile_where
from kaskad.store.engine import make_engine, make_sessionmaker, transaction
from kaskad.store.models import Contact, Event

PROPS = {
    "a": {"cart": {"total": 120, "currency": "EUR"}, "source": "app", "items": ["SKU-1", "SKU-2"], "first": True, "note": "gift for mum"},
    "b": {"cart": {"total": "45.50", "currency": "USD"}, "source": "web", "items": ["SKU-3"], "first": False},
    "c": {"cart": {"total": "n/a"}, "source": None, "items": []},
    "d": {},
}


@pytest.fixture
def events(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        c = Contact(external_id="x", attributes={}, tags=[])
        s.add(c)
        s.flush()
        for name, props in PROPS.items():
            s.add(Event(contact_id=c.id, name=name, occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc), properties=props))

    def match(where):
        assert check(where, "$.where") == []
        with sessions() as s:
            dialect = s.get_bind().dialect.name
            return set(s.scalars(select(Event.name).where(compile_where(Event.properties, where, dialect))))

    yield match
    engine.dispose()


def test_literals_and_operators(events):
    assert events({"source": "app"}) == {"a"}
    assert events({"cart.currency": "EUR", "first": True}) == {"a"}
    assert events({"first": False}) == {"b"}
    assert events({"source": None}) == {"c", "d"}
    assert events({"source": {"ne": "app"}}) == {"b", "c", "d"}
    assert events({"cart.total": {"gte": 45.5}}) == {"a", "b"}  # "45.50" is a numeric string; "n/a" is not a number
    assert events({"cart.total": {"lt": 100}}) == {"b"}
    assert events({"cart.total": 120}) == {"a"}
    assert events({"source": {"in": ["app", "web"]}}) == {"a", "b"}
    assert events({"source": {"not_in": ["app"]}}) == {"b"}  # a missing property satisfies neither in nor not_in
    assert events({"cart": {"exists": True}}) == {"a", "b", "c"}
    assert events({"cart.total": {"exists": False}}) == {"d"}
    assert events({"items": {"contains": "SKU-1"}}) == {"a"}
    assert events({"items": {"contains": "SKU"}}) == set()  # an array holds whole elements
    assert events({"note": {"contains": "mum"}}) == {"a"}  # a string holds substrings
    assert events({"cart.currency": {"gt": "EUR"}}) == {"b"}
    assert events({"cart": {"contains": "currency"}}) == {"a", "b"}  # an object holds keys
    assert events({"items.0": "SKU-3"}) == {"b"}  # a numeric part indexes a list
    assert events({"properties.source": "web"}) == {"b"}


def test_bad_filters_name_the_path():
    assert check({"a": {"gt": 1, "lt": 2}}, "$.w") == [("$.w.a", "an operator object has exactly one key among eq, ne, gt, gte, lt, lte, in, not_in, exists, contains; got ['gt', 'lt']")]
    assert [p for p, _ in check({"a": {"in": [1, "x"]}, "b": {"exists": "yes"}, "c": [1], "": 1, "d": {"nope": 1}}, "$.w")] == [
        "$.w.a.in", "$.w.b.exists", "$.w.c", "$.w.", "$.w.d"]
    assert check([], "$.w")[0][0] == "$.w"
