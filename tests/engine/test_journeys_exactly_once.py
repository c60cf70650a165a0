"""Exactly-once effects over at-least-once delivery: a batch advanced twice, a duplicated
message, and a provider call interrupted by a crash."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from kaskad import clock
from kaskad.engine import broker
from kaskad.engine.batch import advance
from kaskad.engine.scheduler import claim_due
from kaskad.store.engine import transaction
from kaskad.store.models import OutboxMessage
from kaskad_channels.test import SENT, TestChannel
from kaskad_mechanics import noop

from .journeys import EXIT, T0, contact, enroll_ids, flow_doc, outbox, publish, runs, send, statuses

FLOW = [{"id": "gift", "kind": "award", "mechanic": "noop", "next": "mail"}, send("mail", "once"), EXIT]


def _claimed(runtime) -> tuple[int, list[int]]:
    token, groups = claim_due(runtime)
    [ids] = groups.values()
    return token, ids


def test_the_same_claimed_batch_advanced_twice_sends_once(runtime, engine):
    publish(runtime, flow_doc("twice", FLOW))
    ids = [contact(runtime, f"c{i}") for i in range(5)]
    noop.AWARDED.clear()
    enroll_ids(runtime, "twice", ids)
    token, run_ids = _claimed(runtime)
    assert advance(runtime, run_ids, token) > 0
    assert advance(runtime, run_ids, token) == 0  # the stale token finds nothing to do
    engine.drain()
    assert statuses(runtime) == {"exited": 5}
    assert len(SENT) == 5 and len({m.key for m in SENT}) == 5
    assert [o.status for o in outbox(runtime)] == ["sent"] * 5
    assert sorted(noop.AWARDED) == sorted(f"run:{r.id}:gift" for r in runs(runtime))


def test_a_duplicated_message_sends_once(runtime, engine):
    publish(runtime, flow_doc("dup", FLOW))
    ids = [contact(runtime, f"c{i}") for i in range(5)]
    enroll_ids(runtime, "dup", ids)
    token, run_ids = _claimed(runtime)
    broker.enqueue(run_ids, token)
    broker.enqueue(run_ids, token)  # the broker delivered it twice
    engine.broker.join(broker.QUEUE, fail_fast=True)
    engine.worker.join()
    engine.drain()
    assert statuses(runtime) == {"exited": 5}
    assert sorted(m.recipient.external_id for m in SENT) == [f"c{i}" for i in range(5)]
    assert len(outbox(runtime)) == 5


class IdempotentChannel(TestChannel):
    """A provider that deduplicates on our message key: safe to call again."""

    name = "idem"
    idempotent = True


class AtMostOnceChannel(TestChannel):
    """A provider without idempotency keys: a second call would be a second message."""

    name = "once"
    idempotent = False


def _crash_during_the_provider_call(runtime, monkeypatch) -> None:
    """Advance the claimed batch until its messages are marked ``sending``, then die."""

    def dying_deliver(rt, outbox_ids, built=None, record=True, claimed=()):
        # A new message was written as 'sending' by the engine's transaction; a pending one
        # (a retry) is claimed as deliver claims it.
        assert [c.id for c in claimed] or outbox_ids
        if outbox_ids:
            with transaction(rt.sessions) as s:
                s.execute(update(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids))
                          .values(status="sending", attempts=OutboxMessage.attempts + 1))
        raise SystemError("worker killed in the middle of the provider call")

    monkeypatch.setattr("kaskad.engine.send.deliver", dying_deliver)
    token, run_ids = _claimed(runtime)
    with pytest.raises(SystemError):
        advance(runtime, run_ids, token)
    monkeypatch.undo()


@pytest.mark.parametrize("channel", ["once", "idem"])
def test_an_interrupted_provider_call(runtime, engine, monkeypatch, channel):
    runtime.registry.channels["idem"] = IdempotentChannel()
    runtime.registry.channels["once"] = AtMostOnceChannel()
    publish(runtime, flow_doc("crash", [send("mail", "maybe", channel=channel, message={"text": "maybe"}), EXIT]))
    ann = contact(runtime, "ann")
    with clock.travel(T0) as box:
        enroll_ids(runtime, "crash", [ann])
        _crash_during_the_provider_call(runtime, monkeypatch)
        [row] = outbox(runtime)
        assert row.status == "sending"
        [run] = runs(runtime)
        assert run.status == "claimed"  # held at the send node, its message lost with the worker
        engine.drain()
        assert runs(runtime)[0].status == "claimed"  # inside the lease nobody touches it
        box[0] = T0 + timedelta(seconds=runtime.settings.engine_lease + 1)
        engine.drain()  # the sweeper gives the run back; the send node finds the row in 'sending'
    [run] = runs(runtime)
    [row] = outbox(runtime)
    assert run.status == "exited"
    if channel == "once":  # at most once: not resent, the outcome is unknown
        assert (row.status, row.attempts) == ("unknown", 1)
        assert "not resent" in row.error
        assert list(SENT) == []
    else:  # the provider dedupes on the key: sent again, once more
        assert (row.status, row.attempts) == ("sent", 2)
        assert [m.key for m in SENT] == [row.key]
