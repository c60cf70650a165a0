"""An update node never undoes a contact change the API committed while its batch was running.

PostgreSQL only: on SQLite a batch holds the database's one write lock from its
start, so nothing can commit in between.
"""

from __future__ import annotations

import pytest

from kaskad.engine import batch
from kaskad.store.engine import transaction
from kaskad.store.models import Contact
from kaskad.testing.engine import EngineDriver
from kaskad.testing.fixtures import make_runtime

from .journeys import EXIT, contact, enroll_ids, flow_doc, publish


@pytest.fixture
def pg_runtime(pg_url, tmp_path):
    rt = make_runtime(pg_url, tmp_path)
    yield rt
    rt.close()


def test_update_node_keeps_a_change_committed_after_the_batch_loaded_the_contact(pg_runtime, monkeypatch):
    runtime = pg_runtime
    publish(runtime, flow_doc("tag", [
        {"id": "mark", "kind": "update", "set": {"stage": "welcomed"}, "add_tags": ["welcomed"], "next": "end"}, EXIT]))
    ann = contact(runtime, "ann", attributes={"city": "Berlin"}, tags=["new"])
    load, wrote = batch.load_contacts, []

    def load_then_api_writes(session, ids):
        loaded = load(session, ids)
        if wrote:
            return loaded
        wrote.append(True)
        with transaction(runtime.sessions) as s:  # the API, in its own transaction, commits first
            row = s.get(Contact, ann)
            row.attributes = {**row.attributes, "city": "Paris"}
            row.tags = [*row.tags, "vip"]
        return loaded

    monkeypatch.setattr(batch, "load_contacts", load_then_api_writes)
    engine = EngineDriver(runtime)
    try:
        enroll_ids(runtime, "tag", [ann])
        engine.drain()
    finally:
        engine.close()
    with runtime.sessions() as s:
        row = s.get(Contact, ann)
        assert row.attributes == {"city": "Paris", "stage": "welcomed"}
        assert sorted(row.tags) == ["new", "vip", "welcomed"]
