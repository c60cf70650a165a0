"""The scheduler: claims due runs in batches and hands them to the broker; sweeps lost work.

One scheduler leads at a time: on PostgreSQL it holds a session-level advisory
lock on a connection of its own (a second scheduler on another machine waits,
and takes over if the leader's connection dies); on SQLite there is one
process. Each tick:

1. dispatch new events (:mod:`kaskad.engine.dispatch`);
2. sweep (every tenth of the lease): runs claimed longer than the lease ago
   (their message was lost with a worker or with Redis) become due again;
3. claim due runs (``wake_at <= now``; ``FOR UPDATE SKIP LOCKED`` on PostgreSQL)
   under a fresh claim token, group them by flow version and node, and enqueue
   one message per batch. A failed enqueue gives the claim back at once;
4. run periodic jobs (:mod:`kaskad.periodic`) — in a thread of their own when
   the scheduler runs on its own, so that an hour-long report job never holds up
   a due journey step; inline when a test ticks it by hand.

Between idle ticks the leader waits on ``LISTEN`` (:mod:`kaskad.engine.wake`):
committed events wake it at once instead of at the next tick.

Long waits are rows with ``wake_at``, never broker delays.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any, Callable

from sqlalchemy import func, select, text, update

from kaskad import clock, periodic
from kaskad.engine import wake
from kaskad.engine.batch import new_token
from kaskad.engine.dispatch import DISPATCH_BATCH, dispatch_events
from kaskad.store.engine import transaction
from kaskad.store.models import JourneyRun

log = logging.getLogger("kaskad.scheduler")
LEADER_LOCK = 0x4B534B_5343  # "KSK" "SC"

Enqueue = Callable[[list[int], int], None]
# Statuses as literals, not parameters: ix_runs_due holds live runs only (LIVE_RUN), and the
# planner can use a partial index only when it can prove the query's statuses imply its
# predicate, which a prepared statement's generic plan cannot do with parameters.
DUE = text("journey_runs.status IN ('active', 'waiting')")
CLAIMED = text("journey_runs.status = 'claimed'")


def claim_due(runtime: Any, limit: int = 20_000) -> tuple[int, dict[tuple[int, str], list[int]]]:
    """Claim up to ``limit`` due runs under one new token; returns (token, ids by (version, node))."""
    now = clock.now()
    token = new_token()
    t = JourneyRun.__table__
    with transaction(runtime.sessions) as session:
        due = select(t.c.id).where(DUE, t.c.wake_at <= now).limit(limit)
        if runtime.is_postgres:
            due = due.with_for_update(skip_locked=True)
        rows = session.execute(
            update(t).where(t.c.id.in_(due.scalar_subquery()))
            .values(status="claimed", claimed_at=now, claim=token)
            .returning(t.c.id, t.c.flow_version_id, t.c.node_id)
        ).all()
    groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for rid, vid, nid in rows:
        groups[(vid, nid)].append(rid)
    return token, groups


def in_flight(runtime: Any) -> int:
    with runtime.sessions() as session:
        return session.scalar(select(func.count()).select_from(JourneyRun).where(CLAIMED)) or 0


def release(runtime: Any, ids: list[int], token: int) -> None:
    """Give a claim back (the message could not be enqueued): due again now."""
    t = JourneyRun.__table__
    with transaction(runtime.sessions) as session:
        session.execute(update(t).where(t.c.id.in_(ids), t.c.claim == token, t.c.status == "claimed")
                        .values(status="active", claim=None, wake_at=clock.now()))


def sweep(runtime: Any) -> int:
    """Runs claimed longer than the lease ago lost their message: make them due again."""
    now = clock.now()
    t = JourneyRun.__table__
    with transaction(runtime.sessions) as session:
        res = session.execute(
            update(t).where(CLAIMED, t.c.claimed_at < now - timedelta(seconds=runtime.settings.engine_lease))
            .values(status="active", claim=None, wake_at=now)
        )
        return res.rowcount or 0


class Scheduler:
    def __init__(self, runtime: Any, enqueue: Enqueue, jobs_inline: bool = True):
        self.runtime = runtime
        self.enqueue = enqueue
        self.jobs_inline = jobs_inline
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._jobs_thread: threading.Thread | None = None
        self._leader_conn = None
        self._swept_at = None
        periodic.load_jobs()

    # ------------------------------------------------------------ leadership

    def is_leader(self) -> bool:
        if not self.runtime.is_postgres:
            return True
        try:
            if self._leader_conn is not None:
                self._leader_conn.execute(text("SELECT 1"))
                self._leader_conn.commit()  # notifications arrive only outside a transaction
                return True
            conn = self.runtime.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK}).scalar()
            conn.commit()
            if got:
                wake.listen(conn)
                self._leader_conn = conn
                log.info("this scheduler leads")
                return True
            conn.close()
        except Exception:  # the database went away: not leading until it is back
            log.warning("scheduler lost its database connection", exc_info=True)
            self._drop_leadership()
        return False

    def _drop_leadership(self) -> None:
        if self._leader_conn is not None:
            try:
                self._leader_conn.invalidate()
            except Exception:
                pass
        self._leader_conn = None

    # ------------------------------------------------------------ work

    def tick(self) -> int:
        """One round of work; returns how many things it did (0 = idle)."""
        done = 0
        while True:  # drain the event backlog before claiming, so goals win over sends
            n = dispatch_events(self.runtime, clock.now())
            done += n
            if n < DISPATCH_BATCH:  # a short batch: the backlog is drained
                break
        done += self._sweep_due()
        size = max(1, self.runtime.settings.engine_batch)
        # Back-pressure: claim only what the workers can take soon, so nothing
        # sits claimed in the queue long enough to outlive its lease.
        room = max(size * 40, 5000) - in_flight(self.runtime)
        if room <= 0:
            self._jobs_inline()
            return done
        token, groups = claim_due(self.runtime, limit=room)
        for ids in groups.values():
            for i in range(0, len(ids), size):
                chunk = ids[i:i + size]
                try:
                    self.enqueue(chunk, token)
                except Exception:
                    log.warning("could not enqueue a batch of %d runs; giving the claim back", len(chunk), exc_info=True)
                    release(self.runtime, chunk, token)
                done += len(chunk)
        self._jobs_inline()
        return done

    def _sweep_due(self) -> int:
        """Sweep every tenth of the lease, not every tick: the sweep reads every claimed run, and
        nothing claimed can be overdue sooner than a lease after its claim."""
        now = clock.now()
        if self._swept_at is not None and now - self._swept_at < timedelta(seconds=self.runtime.settings.engine_lease / 10):
            return 0
        self._swept_at = now
        return sweep(self.runtime)

    def _jobs_inline(self) -> None:
        if self.jobs_inline:
            periodic.run_due(self.runtime, clock.now())

    def run_jobs(self) -> None:
        """The periodic jobs loop (leader only), beside the claim loop."""
        while not self._stop.wait(1.0):
            try:
                if self._leader_conn is not None or not self.runtime.is_postgres:
                    periodic.run_due(self.runtime, clock.now())
            except Exception:
                log.exception("periodic jobs failed")

    def run(self) -> None:
        tick = self.runtime.settings.engine_tick
        while not self._stop.is_set():
            busy = 0
            try:
                if self.is_leader():
                    busy = self.tick()
            except Exception:
                log.exception("scheduler tick failed")
            if not busy:
                self._idle(tick)

    def _idle(self, tick: float) -> None:
        """Wait for the next tick, or less when the leader hears that new events were committed."""
        if self._leader_conn is None:
            self._stop.wait(tick)
            return
        deadline = time.monotonic() + tick
        try:
            driver = self._leader_conn.connection.driver_connection
            # in slices of at most a second, so that stop() is not kept waiting a long tick
            while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
                if wake.wait(driver, min(left, 1.0)):
                    return
        except Exception:  # the connection broke: is_leader() finds out and reconnects
            log.warning("scheduler could not wait for notifications", exc_info=True)
            self._stop.wait(max(0.0, deadline - time.monotonic()))

    def start(self) -> "Scheduler":
        self.jobs_inline = False
        self._thread = threading.Thread(target=self.run, name="kaskad-scheduler", daemon=True)
        self._thread.start()
        self._jobs_thread = threading.Thread(target=self.run_jobs, name="kaskad-jobs", daemon=True)
        self._jobs_thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._jobs_thread):
            if thread is not None:
                thread.join(timeout=30)
        self._drop_leadership()
