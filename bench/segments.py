"""Segment count and RFM recompute time on PostgreSQL.

    .venv/bin/python bench/segments.py [--contacts 1000000] [--orders 10000000]

Starts its own PostgreSQL, generates data with generate_series, prints figures.
Orders are spread over two years in id order (as a live shop's orders arrive) with
random contacts and amounts; every 50th is refunded.
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import event, func, select, text

from kaskad import segments
from kaskad.migrations import upgrade
from kaskad.segments import membership, order_stats, rfm, rfm_snapshots
from kaskad.store.engine import make_engine, make_sessionmaker, transaction
from kaskad.testing.servers import PostgresServer

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


CLK = os.sysconf("SC_CLK_TCK")


def backend_cpu(session) -> float:
    """CPU seconds of this session's PostgreSQL backend, plus the parallel workers its
    postmaster has reaped (they count in the postmaster's cutime/cstime)."""
    pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()

    def stat(p):
        return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()

    own = stat(pid)
    reaped = stat(int(own[1]))
    return (int(own[11]) + int(own[12]) + int(reaped[13]) + int(reaped[14])) / CLK


@contextmanager
def statement_times(engine):
    """Record (statement, seconds) of every statement run on ``engine`` inside the block."""
    times, started = [], {}

    def before(conn, cursor, statement, params, context, many):
        started[id(cursor)] = time.perf_counter()

    def after(conn, cursor, statement, params, context, many):
        times.append((" ".join(statement.split()), time.perf_counter() - started.pop(id(cursor), time.perf_counter())))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield times
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--contacts", type=int, default=1_000_000)
    p.add_argument("--orders", type=int, default=10_000_000)
    a = p.parse_args()
    server = PostgresServer().start()
    try:
        url = server.create_database("bench_segments")
        upgrade(url)
        engine = make_engine(url)
        t = time.perf_counter()
        with engine.begin() as c:
            c.execute(text("INSERT INTO contacts (external_id, attributes, tags) "
                           "SELECT 'c' || g, '{}'::jsonb, '[]'::jsonb FROM generate_series(1, :n) g"), {"n": a.contacts})
            c.execute(text(
                "INSERT INTO orders (external_id, contact_id, status, amount, refunded_amount, currency, placed_at, attributes) "
                "SELECT 'o' || g, 1 + (hashint8(g) & 2147483647) % :n, CASE WHEN g % 50 = 0 THEN 'refunded' ELSE 'paid' END, "
                "(hashint8(g * 7) & 65535) / 100.0, 0, 'EUR', "
                "timestamptz '2026-06-01' - ((:m - g) * (730.0 * 86400 / :m)) * interval '1 second', '{}'::jsonb "
                "FROM generate_series(1, :m) g"), {"n": a.contacts, "m": a.orders})
        print(f"generated {a.contacts:,} contacts, {a.orders:,} orders in {time.perf_counter() - t:.1f} s")
        sessions = make_sessionmaker(engine)
        t = time.perf_counter()
        with transaction(sessions) as s:  # what the migration's backfill does once; ingest keeps it current after
            order_stats.rebuild(s)
        with engine.begin() as c:
            c.execute(text("ANALYZE"))
        print(f"order summary rebuilt from all orders in {time.perf_counter() - t:.1f} s")
        segments.define(segments.decode(b'{"key": "bench-recent-repeat", "name": "2+ orders in 30 days",'
                                        b' "condition": {"kind": "orders", "measure": "count", "op": "gte", "value": 2, "within_days": 30}}'))
        for key in ("sleeping-90d", "lapsed-big-spenders", "bench-recent-repeat"):
            with sessions() as s:
                c, t = backend_cpu(s), time.perf_counter()
                n = segments.count(s, key, now=NOW)
                print(f"segment count {key}: {n:,} members in {time.perf_counter() - t:.2f} s "
                      f"({backend_cpu(s) - c:.2f} s PostgreSQL CPU; load average {os.getloadavg()[0]:.1f})")
        with sessions() as s:
            ids = list(range(1, a.contacts + 1, max(1, a.contacts // 1000)))
            t = time.perf_counter()
            n = len(segments.members_among(s, "bench-recent-repeat", ids, now=NOW))
            print(f"members_among {len(ids):,} ids (windowed orders): {n:,} in {time.perf_counter() - t:.3f} s")
        with transaction(sessions) as s:
            ids = list(range(1, a.contacts + 1, max(1, a.contacts // 1000)))
            t = time.perf_counter()
            order_stats.refresh(s, ids)
            print(f"order summary refresh for {len(ids):,} contacts (one ingest batch) in {time.perf_counter() - t:.3f} s")
        with sessions() as s:
            t = time.perf_counter()
            q = rfm.scores_query().subquery()
            n = s.execute(select(func.count()).select_from(q)).scalar_one()
            print(f"RFM scores for {n:,} contacts (server-side, counted) in {time.perf_counter() - t:.2f} s")
        with transaction(sessions) as s, statement_times(engine) as times:
            c, t = backend_cpu(s), time.perf_counter()
            n = rfm_snapshots.take(s, NOW)
            took, cpu = time.perf_counter() - t, backend_cpu(s) - c
        print(f"RFM recompute + dated snapshot of {n:,} contacts (the periodic job) in {took:.2f} s "
              f"({cpu:.2f} s PostgreSQL CPU; load average {os.getloadavg()[0]:.1f}; "
              f"commit included: {time.perf_counter() - t:.2f} s); its statements: "
              + "; ".join(f"{sql[:40]!r} {sec:.2f} s" for sql, sec in times))
        with transaction(sessions) as s:
            t = time.perf_counter()
            membership.full_pass(s, "sleeping-90d", NOW)
            print(f"membership full pass sleeping-90d (first: records the population) in {time.perf_counter() - t:.2f} s")
        with transaction(sessions) as s:
            t = time.perf_counter()
            entered, exited = membership.full_pass(s, "sleeping-90d", NOW + timedelta(days=1))
            print(f"membership full pass one day later: {entered:,} entered, {exited:,} exited in {time.perf_counter() - t:.2f} s")
        engine.dispose()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
