"""Failing plugins: retried with backoff, then the run fails with the reason; the rest of the batch goes on."""

from __future__ import annotations

from datetime import timedelta

from kaskad import clock
from kaskad.channels import SendResult
from kaskad.engine.batch import MAX_ATTEMPTS
from kaskad.mechanics import Mechanic
from kaskad_channels.test import SENT, TestChannel

from .journeys import EXIT, T0, contact, enroll_ids, flow_doc, outbox, publish, run_of, send, statuses, texts


class FlakyMechanic(Mechanic):
    """Raises for contacts whose external id starts with "bad"."""

    name = "flaky"
    calls: list[int] = []

    def __init__(self, runtime) -> None:
        self.runtime = runtime

    def award(self, session, ctx, config) -> dict:
        self.calls.append(ctx.contact_id)
        from kaskad.store.models import Contact

        if session.get(Contact, ctx.contact_id).external_id.startswith("bad"):
            raise RuntimeError("the ledger is on fire")
        return {"ok": True}


class BrokenChannel(TestChannel):
    """Raises for the whole batch: every message in it is retried."""

    name = "broken"

    async def send_batch(self, messages):
        raise ConnectionError("provider unreachable")


class PickyChannel(TestChannel):
    """Refuses messages to "bad…" addresses for good, asks to retry "slow…" ones, sends the rest."""

    name = "picky"

    async def send_batch(self, messages):
        ok = [m for m in messages if not m.address.startswith(("bad", "slow"))]
        SENT.extend(ok)
        return [SendResult(key=m.key, status="failed", error="mailbox does not exist") if m.address.startswith("bad")
                else SendResult(key=m.key, status="retry", error="try later") if m.address.startswith("slow")
                else SendResult(key=m.key, status="sent") for m in messages]


def _until_settled(engine, box, hours: int = 1, rounds: int = 12) -> None:
    """Move time on (past every backoff) and drain, a few times."""
    for _ in range(rounds):
        box[0] = box[0] + timedelta(hours=hours)
        engine.drain()


def test_a_failing_mechanic_is_retried_then_fails_the_run_alone(runtime, engine, api):
    runtime.settings.retry_base = 60.0
    runtime.registry.mechanics["flaky"] = FlakyMechanic(runtime)
    FlakyMechanic.calls = []
    publish(runtime, flow_doc("gift", [
        {"id": "gift", "kind": "award", "mechanic": "flaky", "next": "mail"}, send("mail", "enjoy"), EXIT]))
    good1, bad, good2 = contact(runtime, "good1"), contact(runtime, "bad"), contact(runtime, "good2")
    with clock.travel(T0) as box:
        enroll_ids(runtime, "gift", [good1, bad, good2])
        engine.drain()
        # The good ones went on in the same batch; the bad one waits for its first retry.
        assert [run_of(runtime, c).status for c in (good1, good2)] == ["exited", "exited"]
        waiting = run_of(runtime, bad)
        assert (waiting.status, waiting.attempts, waiting.node_id) == ("waiting", 1, "gift")
        assert waiting.wake_at == T0 + timedelta(seconds=60)
        assert "the ledger is on fire" in waiting.error
        box[0] = T0 + timedelta(seconds=60)
        engine.drain()
        assert run_of(runtime, bad).wake_at == box[0] + timedelta(seconds=120)  # backoff doubles
        _until_settled(engine, box)
    failed = run_of(runtime, bad)
    assert failed.status == "failed"
    assert failed.error == (f"award 'flaky' failed: RuntimeError: the ledger is on fire "
                            f"(gave up after {MAX_ATTEMPTS} attempts)")
    assert failed.attempts == MAX_ATTEMPTS
    assert len(set(FlakyMechanic.calls) - {bad}) == 2  # the good ones were awarded (in the same batch)
    assert sorted(texts()) == ["enjoy", "enjoy"] and texts("bad") == []
    listed = api.get("/api/v1/flows/gift/runs?status=failed").json()
    assert [(r["contact"], r["node"], r["error"]) for r in listed] == [("bad", "gift", failed.error)]
    stats = api.get("/api/v1/flows/gift/stats").json()
    assert (stats["failed"], stats["exited"]) == (1, 2)
    assert stats["nodes"]["gift"]["failed"] == 1 and stats["nodes"]["gift"]["ports"] == {"next": 2}


def test_a_channel_that_raises_is_retried_then_fails_the_run(runtime, engine, api):
    runtime.settings.retry_base = 60.0
    runtime.registry.channels["broken"] = BrokenChannel()
    publish(runtime, flow_doc("down", [send("mail", "hello", channel="broken", message={"text": "hello"}), EXIT]))
    ann = contact(runtime, "ann")
    with clock.travel(T0) as box:
        enroll_ids(runtime, "down", [ann])
        engine.drain()
        run = run_of(runtime, ann)
        [row] = outbox(runtime)
        assert (run.status, row.status, row.attempts) == ("waiting", "pending", 1)
        assert row.error == "ConnectionError: provider unreachable"
        _until_settled(engine, box)
    [row] = outbox(runtime)
    assert (row.status, row.attempts, row.sent_at) == ("failed", MAX_ATTEMPTS, None)
    run = run_of(runtime, ann)
    assert run.status == "failed"
    assert run.error == f"broken send failed: ConnectionError: provider unreachable (gave up after {MAX_ATTEMPTS} attempts)"
    assert [r["error"] for r in api.get("/api/v1/flows/down/runs?status=failed").json()] == [run.error]


def test_one_refused_message_does_not_hold_up_its_batch(runtime, engine):
    runtime.settings.retry_base = 60.0
    runtime.registry.channels["picky"] = PickyChannel()
    publish(runtime, flow_doc("picky", [
        send("mail", "hi", channel="picky", message={"text": "hi {{ contact.external_id }}"}, next="after"),
        send("after", "after"), EXIT]))
    ids = {name: contact(runtime, name) for name in ("ok1", "bad", "slow", "ok2")}
    with clock.travel(T0) as box:
        enroll_ids(runtime, "picky", list(ids.values()))
        engine.drain()
        assert run_of(runtime, ids["bad"]).status == "failed"  # refused for good: no retry
        assert run_of(runtime, ids["bad"]).error == "picky send failed: mailbox does not exist"
        assert run_of(runtime, ids["slow"]).status == "waiting"
        assert [run_of(runtime, ids[n]).status for n in ("ok1", "ok2")] == ["exited", "exited"]
        _until_settled(engine, box)
    assert statuses(runtime) == {"exited": 2, "failed": 2}
    assert sorted(texts()) == ["after", "after", "hi ok1", "hi ok2"]
    slow = [o for o in outbox(runtime, contact_id=ids["slow"])]
    assert [(o.node_id, o.status, o.attempts) for o in slow] == [("mail", "failed", MAX_ATTEMPTS)]


def test_a_template_that_fails_for_one_contact_fails_only_that_run(runtime, engine):
    publish(runtime, flow_doc("tpl", [send("mail", "{{ contact.attributes.first + '!' }}"), EXIT]))
    good, bad = contact(runtime, "good", attributes={"first": "Ann"}), contact(runtime, "bad", attributes={"first": 7})
    enroll_ids(runtime, "tpl", [good, bad])
    engine.drain()
    assert texts() == ["Ann!"]
    failed = run_of(runtime, bad)
    assert failed.status == "failed" and failed.error.startswith("test template: template failed:")
    assert [o.contact_id for o in outbox(runtime)] == [good]


def test_a_channel_uninstalled_after_publishing_fails_its_runs_with_the_reason(runtime, engine):
    runtime.registry.channels["picky"] = PickyChannel()
    publish(runtime, flow_doc("gone", [send("mail", "hi", channel="picky", message={"text": "hi"}), EXIT]))
    del runtime.registry.channels["picky"]
    ann = contact(runtime, "ann")
    enroll_ids(runtime, "gone", [ann])
    engine.drain()
    run = run_of(runtime, ann)
    assert (run.status, run.error) == ("failed", "channel 'picky' is not installed")
    assert outbox(runtime) == []
