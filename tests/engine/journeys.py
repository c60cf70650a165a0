"""Shared pieces of the end-to-end journey tests (tests/engine/test_journeys_*.py).

Import the ``engine`` fixture into a test module with
``from .journeys import engine  # noqa: F401``; it clears what the test channel
recorded, so every test sees only its own messages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from sqlalchemy import select

from kaskad import clock
from kaskad.engine.enroll import enroll
from kaskad.store.engine import transaction
from kaskad.store.models import Contact, JourneyRun, RunStep
from kaskad_channels import test as test_channel

from .helpers import T0, add_contacts, add_event, flow_doc, outbox, publish, runs, statuses  # noqa: F401

EXIT = {"id": "end", "kind": "exit"}



def send(node_id: str, text: str, next: str | None = "end", channel: str = "test", **more: Any) -> dict:
    """A send node on the test channel (or another channel with its own message)."""
    message = {"text": text} if channel == "test" else more.pop("message")
    node = {"id": node_id, "kind": "send", "channel": channel, "message": message, **more}
    if next is not None:
        node["next"] = next
    return node


def enroll_ids(runtime, key: str, ids: Sequence[int], now: datetime | None = None, **kw: Any):
    with transaction(runtime.sessions) as s:
        return enroll(s, runtime, key, list(ids), now=now or clock.now(), **kw)


def contact(runtime, external_id: str = "c0", **fields: Any) -> int:
    fields.setdefault("attributes", {})
    fields.setdefault("tags", [])
    with transaction(runtime.sessions) as s:
        row = Contact(external_id=external_id, **fields)
        s.add(row)
        s.flush()
        return row.id


def run_of(runtime, contact_id: int) -> JourneyRun:
    found = runs(runtime, contact_id=contact_id)
    assert len(found) == 1, f"expected one run for contact {contact_id}, got {len(found)}"
    return found[0]


def steps(runtime, run_id: int) -> list[tuple[str, str | None, str]]:
    """A run's path: (node, port, outcome) in order."""
    with runtime.sessions() as s:
        return [(st.node_id, st.port, st.outcome) for st in s.scalars(
            select(RunStep).where(RunStep.run_id == run_id).order_by(RunStep.id))]


def texts(contact_external_id: str | None = None) -> list[str]:
    """What the test channel recorded (to one contact, if named), in order."""
    return [m.content["text"] for m in test_channel.SENT
            if contact_external_id is None or m.recipient.external_id == contact_external_id]


def sent_keys() -> list[str]:
    return [m.key for m in test_channel.SENT]
