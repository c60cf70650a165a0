"""Advancing a batch of runs: the heart of the engine.

One call takes run ids the scheduler claimed (they carry its claim token),
locks them, and walks every run through as many nodes as it can in one
transaction: branch, split, award, update and exit nodes pass at once, a wait
node parks the run with its ``wake_at``, a send node writes the outbox row and
holds the run until the message is handed to the provider (between two
transactions, see :mod:`kaskad.engine.send`). All database work is set-based:
a handful of statements per batch and node, never one transaction per run.

A stale or duplicated message is harmless: it carries an old claim token and
finds no run to advance.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.engine.counts import add_counts
from kaskad.engine.plan import FlowPlan, plan_for_version
from kaskad.store.bulk import among, bulk_insert, bulk_update, fetch_rows
from kaskad.store.engine import transaction
from kaskad.store.models import Contact, JourneyRun, RunStep

log = logging.getLogger("kaskad.engine")

RUNS, CONTACTS = JourneyRun.__table__, Contact.__table__
TERMINAL = ("exited", "converted", "failed", "holdout")
MAX_ATTEMPTS = 5


def new_token() -> int:
    return random.getrandbits(62) or 1


def backoff(attempts: int, base: float) -> timedelta:
    """Exponential backoff for a failing plugin call: base, 2·base, 4·base… capped at one hour."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600.0))


@dataclass(slots=True)
class Run:
    """A run in memory while its batch is advanced."""

    id: int
    flow_id: int
    version_id: int
    contact_id: int
    node_id: str
    entered_at: datetime
    attempts: int
    context: dict
    status: str = "claimed"
    wake_at: datetime | None = None
    error: str | None = None
    moved: bool = False
    blocked: bool = False  # held at a send node until its message is handed over


@dataclass
class BatchContext:
    """What node handlers get: the session, the runtime, the batch's contacts, and ways to move runs."""

    session: Session
    runtime: Any
    now: datetime
    contacts: dict[int, dict]
    #: The contacts of ``contacts`` read in this transaction (the others in an earlier one of
    #: the same advance call): the send policy trusts only these instead of reading them again.
    fresh: set[int] = field(default_factory=set)
    dry_run: bool = False
    steps: list[dict] = field(default_factory=list)
    counts: list[tuple[int, str, str, int]] = field(default_factory=list)
    #: Pending outbox row ids to claim and hand to providers after this transaction commits.
    deliver: list[int] = field(default_factory=list)
    #: Outbox rows this transaction writes as ``sending``, to hand over once it commits.
    handover: list[Any] = field(default_factory=list)
    #: Outbox ids handed over earlier in this advance call (a pending one among them is a retry).
    delivered: set[int] = field(default_factory=set)
    #: The messages written to the outbox in this transaction, by key: handed to the provider
    #: as they are, instead of being read back from their rows.
    built: dict[str, Any] = field(default_factory=dict)
    #: Dry run: what would be sent.
    sent: list[dict] = field(default_factory=list)
    notes: dict[int, list[dict]] = field(default_factory=lambda: defaultdict(list))

    @property
    def retry_base(self) -> float:
        return float(getattr(self.runtime.settings, "retry_base", 30.0) or 30.0)

    def _step(self, run: Run, node_id: str, port: str | None, outcome: str, detail: str | None = None) -> None:
        self.steps.append({"run_id": run.id, "flow_version_id": run.version_id, "node_id": node_id, "port": port,
                           "outcome": outcome, "detail": detail, "at": self.now})
        if self.dry_run:
            self.notes[run.id].append({"node": node_id, "port": port, "outcome": outcome, "note": detail or ""})

    def move(self, run: Run, port: str, target: str | None, detail: str | None = None) -> None:
        """The run leaves its node by ``port`` towards ``target`` (None: the path ends, the run exits)."""
        self._step(run, run.node_id, port, "passed", detail)
        self.counts.append((run.version_id, run.node_id, port, 1))
        run.attempts = 0
        run.error = None
        if target is None:
            self.finish(run, "exited", None, record=False)
            return
        self.counts.append((run.version_id, target, "@entered", 1))
        run.node_id = target
        run.moved = True

    def wait(self, run: Run, until: datetime, detail: str | None = None) -> None:
        """Park the run at its node until ``until``."""
        run.status = "waiting"
        run.wake_at = until
        self._step(run, run.node_id, None, "waiting", detail or f"until {until.isoformat()}")

    def finish(self, run: Run, status: str, detail: str | None = None, record: bool = True) -> None:
        run.status = status
        run.wake_at = None
        if record:
            self._step(run, run.node_id, None, "exited" if status != "failed" else "failed", detail)
        if status == "failed":
            run.error = detail
            self.counts.append((run.version_id, run.node_id, "@failed", 1))

    def retry(self, run: Run, error: str) -> None:
        """A plugin call failed: try again later with backoff, or fail the run after MAX_ATTEMPTS."""
        run.attempts += 1
        run.error = error
        if run.attempts >= MAX_ATTEMPTS:
            self.finish(run, "failed", f"{error} (gave up after {run.attempts} attempts)")
        else:
            self.wait(run, self.now + backoff(run.attempts, self.retry_base), f"attempt {run.attempts} failed: {error}")

    def block(self, run: Run, outbox_id: int | None) -> None:
        """Hold the run at its send node; its pending message ``outbox_id`` is handed over after the commit."""
        run.blocked = True
        if outbox_id is not None:
            self.deliver.append(outbox_id)

    def hand_over(self, run: Run, outbox_id: int, key: str, channel: str) -> None:
        """Hold the run; its message, written as ``sending`` by this transaction, is handed over after the commit."""
        from kaskad.engine.send import Claimed

        run.blocked = True
        self.handover.append(Claimed(outbox_id, key, channel, 1))


Handler = Callable[[BatchContext, FlowPlan, Any, list[Run]], None]


def handler_for(node: Any) -> Handler | None:
    from kaskad.engine import handlers, send
    from kaskad.flow.model import PluginNode

    if isinstance(node, PluginNode):
        return handlers.handle_plugin
    kind = type(node).__struct_config__.tag
    return send.handle_send if kind == "send" else handlers.HANDLERS.get(kind)


def load_contacts(session: Session, ids: set[int]) -> dict[int, dict]:
    c = CONTACTS.c  # Core, not ORM: the hot path skips the ORM's compile and row loading
    rows = fetch_rows(session, select(c.id, c.external_id, c.email, c.phone, c.timezone, c.attributes, c.tags,
                                      c.erased_at.is_not(None)).where(among(session, c.id, ids)))
    return {
        cid: {"id": cid, "external_id": xid, "email": email, "phone": phone, "timezone": tz,
              "attributes": attrs or {}, "tags": tags or [], "erased": bool(erased)}
        for cid, xid, email, phone, tz, attrs, tags, erased in rows
    }


def walk(ctx: BatchContext, runs: list[Run]) -> None:
    """Move every run through nodes until it waits, ends, or is held at a send node."""
    active = [r for r in runs if r.status == "claimed" and not r.blocked]
    for _ in range(max(1, int(getattr(ctx.runtime.settings, "engine_steps", 1000)))):
        if not active:
            return
        groups: dict[tuple[int, str], list[Run]] = defaultdict(list)
        for r in active:
            r.moved = False
            contact = ctx.contacts.get(r.contact_id)
            if contact is None or contact.get("erased"):
                ctx.finish(r, "exited", "contact erased")
                continue
            groups[(r.version_id, r.node_id)].append(r)
        for (version_id, node_id), group in groups.items():
            plan = plan_for_version(ctx.session, version_id)
            node = plan.node(node_id)
            handler = handler_for(node) if node is not None else None
            if node is None or handler is None:
                for r in group:
                    ctx.finish(r, "failed", f"node {node_id!r} has no handler in flow {plan.key!r} v{plan.version}")
                continue
            try:
                handler(ctx, plan, node, group)
            except Exception as exc:  # a bug or a plugin blowing up must fail its runs, not the worker
                log.exception("node %s of flow %s failed", node_id, plan.key)
                for r in group:
                    if r.status == "claimed" and not r.blocked and not r.moved:
                        ctx.retry(r, f"{type(exc).__name__}: {exc}")
        active = [r for r in active if r.moved and r.status == "claimed" and not r.blocked]


def _lock_runs(session: Session, ids: list[int], token: int) -> list[Run]:
    t = RUNS.c
    q = select(t.id, t.flow_id, t.flow_version_id, t.contact_id, t.node_id, t.entered_at, t.attempts, t.context).where(
        among(session, t.id, ids), t.status == "claimed", t.claim == token)
    if session.get_bind().dialect.name == "postgresql":
        q = q.order_by(t.id).with_for_update()
    return [Run(rid, flow_id, version_id, contact_id, node_id, entered_at, attempts, dict(context or {}))
            for rid, flow_id, version_id, contact_id, node_id, entered_at, attempts, context in fetch_rows(session, q)]


def save(ctx: BatchContext, runs: list[Run], hold_token: int) -> list[int]:
    """Write the batch back: runs, steps and counters (one statement each).

    Runs held at a send node and runs that used up the step budget stay claimed
    under ``hold_token``; the latter are returned, to continue in a new message.
    """
    params, more = [], []
    for r in runs:
        st, tok = r.status, None
        if r.blocked or st == "claimed":
            st, tok = "claimed", hold_token
            if not r.blocked:
                more.append(r.id)
        params.append({"id": r.id, "node_id": r.node_id, "status": st, "wake_at": r.wake_at, "claim": tok,
                       "attempts": r.attempts, "error": r.error, "context": r.context,
                       "finished_at": ctx.now if st in TERMINAL else None, "claimed_at": ctx.now if tok else None})
    bulk_update(ctx.session, JourneyRun.__table__, params)
    bulk_insert(ctx.session, RunStep.__table__, ctx.steps)
    add_counts(ctx.session, ctx.counts, ctx.now)
    return more


def continue_later(runtime: Any, run_ids: list[int], token: int) -> None:
    """Runs that used up this message's step budget go on in a new message (the sweeper
    catches them if the enqueue is lost)."""
    from kaskad.engine import broker

    try:
        broker.enqueue(run_ids, token)
    except Exception:
        log.warning("could not enqueue the continuation of %d runs; the sweeper will", len(run_ids), exc_info=True)


def advance(runtime: Any, run_ids: list[int], token: int) -> int:
    """Advance the claimed runs ``run_ids`` (claim ``token``). Returns node steps taken."""
    from kaskad.engine.send import deliver, record_results

    delivered: set[int] = set()
    contacts: dict[int, dict] = {}
    steps = 0
    ids = list(run_ids)
    results: list[dict] = []  # what providers answered, written with the next step's runs
    while ids:
        hold = new_token()
        with transaction(runtime.sessions) as session:
            if results:
                record_results(session, results)
                results = []
            runs = _lock_runs(session, ids, token)
            if not runs:
                return steps
            # After a send the same contacts go on: read each contact once per call
            # (an update node re-reads its contacts under lock before writing).
            missing = {r.contact_id for r in runs} - contacts.keys()
            if missing:
                contacts.update(load_contacts(session, missing))
            ctx = BatchContext(session=session, runtime=runtime, now=clock.now(), contacts=contacts,
                               fresh=missing, delivered=delivered)
            walk(ctx, runs)
            more = save(ctx, runs, hold)
            steps += sum(1 for s in ctx.steps if s["outcome"] == "passed")
        if more:
            continue_later(runtime, more, hold)
        ids = [r.id for r in runs if r.blocked]
        if ctx.deliver or ctx.handover:
            # One transaction fewer per batch: the results are recorded by the next
            # transaction, which reads them back at once to move the held runs on.
            results = deliver(runtime, ctx.deliver, ctx.built, record=False, claimed=ctx.handover)
            delivered.update(ctx.deliver)
            delivered.update(c.id for c in ctx.handover)
        token = hold
    if results:  # a held run always comes back above; this is only a safety net
        with transaction(runtime.sessions) as session:
            record_results(session, results)
    return steps
