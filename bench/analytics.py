"""Analytics on PostgreSQL: refresh time of the materialised tables and response times of
the journey report and base-health endpoints.

    .venv/bin/python bench/analytics.py [--contacts 1000000] [--orders 10000000] [--runs 1000000]

Starts its own PostgreSQL; contacts and orders are generated as in bench/segments.py
(two years of orders, 1 in 50 refunded), plus one journey with a holdout and an A/B split:
``--runs`` runs over a year, each path run gets an email (sent, most delivered, some opened,
clicked, unsubscribed), one in three an SMS a day later; steps for split, mail and wait.
Prints the seeding and refresh times, then each endpoint's median / p95 / max over 30 calls.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from litestar.testing import TestClient
from sqlalchemy import text

from kaskad import tokens
from kaskad.analytics import jobs
from kaskad.api.app import create_app
from kaskad.config import Settings
from kaskad.migrations import upgrade
from kaskad.runtime import Runtime
from kaskad.store.engine import make_engine, make_sessionmaker, transaction
from kaskad.testing.servers import PostgresServer

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
FLOW = {"schema": "kaskad.flow/1", "key": "bench", "name": "bench", "goal": {"event": "order_paid", "within": "P7D"},
        "nodes": []}

SEED_JOURNEY = [
    "INSERT INTO flows (id, key, name, current_version) VALUES (1, 'bench', 'bench', 1)",
    "INSERT INTO flow_versions (id, flow_id, version, status, document) VALUES (1, 1, 1, 'published', :doc)",
    # run g: contact from a hash, entered g % 365 days before NOW; 1 in 10 holdout, else path A or B
    """INSERT INTO journey_runs (id, flow_id, flow_version_id, contact_id, node_id, status, entered_at, attempts, context)
       SELECT g, 1, 1, 1 + (hashint8(g * 31) & 2147483647) % :n, 'end',
              CASE WHEN g % 10 = 0 THEN 'holdout' ELSE 'exited' END,
              timestamptz '2026-06-01' - (g % 365) * interval '1 day' - (hashint8(g) & 65535) * interval '1 second', 0,
              jsonb_build_object('split', jsonb_build_object('node', 'split', 'path',
                  CASE WHEN g % 10 = 0 THEN 'control' WHEN g % 2 = 0 THEN 'A' ELSE 'B' END))
       FROM generate_series(1, :r) g""",
    "SELECT setval(pg_get_serial_sequence('journey_runs', 'id'), :r)",
    """INSERT INTO run_steps (run_id, flow_version_id, node_id, port, outcome, at)
       SELECT id, 1, 'split', 'path:x', 'passed', entered_at FROM journey_runs""",
    """INSERT INTO run_steps (run_id, flow_version_id, node_id, port, outcome, at)
       SELECT id, 1, n.node, 'next', 'passed', entered_at + n.after * interval '1 day'
       FROM journey_runs, (VALUES ('mail', 0), ('wait', 1)) AS n(node, after) WHERE status <> 'holdout'""",
    """INSERT INTO outbox (id, key, run_id, flow_id, node_id, contact_id, channel, status, payload, cost, attempts, created_at, sent_at)
       SELECT id, 'run:' || id || ':mail:0', id, 1, 'mail', contact_id, 'email', 'sent', '{}'::jsonb, 0.001, 1, entered_at, entered_at
       FROM journey_runs WHERE status <> 'holdout'""",
    """INSERT INTO outbox (id, key, run_id, flow_id, node_id, contact_id, channel, status, payload, cost, attempts, created_at, sent_at)
       SELECT :r + id, 'run:' || id || ':mail:1', id, 1, 'mail', contact_id, 'sms', 'sent', '{}'::jsonb, 0.05, 1,
              entered_at + interval '1 day', entered_at + interval '1 day'
       FROM journey_runs WHERE status <> 'holdout' AND id % 3 = 0""",
    "SELECT setval(pg_get_serial_sequence('outbox', 'id'), 2 * :r)",
    """INSERT INTO message_events (outbox_id, contact_id, status, at, detail)
       SELECT o.id, o.contact_id, e.status, o.sent_at + interval '1 minute', '{}'::jsonb
       FROM outbox o, (VALUES ('delivered', 90), ('opened', 30), ('clicked', 5), ('unsubscribed', 1)) AS e(status, pct)
       WHERE (hashint8(o.id * 17 + e.pct) & 65535) % 100 < e.pct""",
]


def timed(client, path: str, headers: dict, n: int = 30) -> str:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = client.get(path, headers=headers)
        times.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, r.text
    times.sort()
    return (f"median {statistics.median(times):6.1f} ms   p95 {times[int(0.95 * (n - 1))]:6.1f} ms   "
            f"max {times[-1]:6.1f} ms   ({len(r.content):,} bytes)")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--contacts", type=int, default=1_000_000)
    p.add_argument("--orders", type=int, default=10_000_000)
    p.add_argument("--runs", type=int, default=1_000_000)
    a = p.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    server = PostgresServer().start()
    try:
        url = server.create_database("bench_analytics")
        upgrade(url)
        engine = make_engine(url)
        t = time.perf_counter()
        with engine.begin() as c:
            c.execute(text("INSERT INTO contacts (external_id, attributes, tags, created_at) "
                           "SELECT 'c' || g, '{}'::jsonb, '[]'::jsonb, timestamptz '2024-01-01' + (g % 880) * interval '1 day' "
                           "FROM generate_series(1, :n) g"), {"n": a.contacts})
            c.execute(text(
                "INSERT INTO orders (external_id, contact_id, status, amount, refunded_amount, currency, placed_at, attributes) "
                "SELECT 'o' || g, 1 + (hashint8(g) & 2147483647) % :n, CASE WHEN g % 50 = 0 THEN 'refunded' ELSE 'paid' END, "
                "(hashint8(g * 7) & 65535) / 100.0, 0, 'EUR', "
                "timestamptz '2026-06-01' - ((hashint8(g * 13) & 2147483647) % (730 * 86400)) * interval '1 second', '{}'::jsonb "
                "FROM generate_series(1, :m) g"), {"n": a.contacts, "m": a.orders})
            for stmt in SEED_JOURNEY:
                c.execute(text(stmt), {"n": a.contacts, "r": a.runs, "doc": json.dumps(FLOW)})
            c.execute(text("ANALYZE"))
        print(f"generated {a.contacts:,} contacts, {a.orders:,} orders, {a.runs:,} journey runs "
              f"with their steps, messages and message events in {time.perf_counter() - t:.1f} s")
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as s:
            t = time.perf_counter()
            n = jobs.refresh_journeys(s, NOW)
            print(f"refresh journeys (full, {n:,} runs): {time.perf_counter() - t:.1f} s")
        with transaction(sessions) as s:
            t = time.perf_counter()
            n = jobs.refresh_journeys(s, NOW, since=jobs.recent_since(s, NOW, jobs.AttributionRules()))
            print(f"refresh journeys (recent days only, {n:,} runs): {time.perf_counter() - t:.1f} s")
        with transaction(sessions) as s:
            t = time.perf_counter()
            jobs.refresh_base(s, NOW)
            print(f"refresh base health: {time.perf_counter() - t:.1f} s")
        engine.dispose()
        with tempfile.TemporaryDirectory() as home:
            runtime = Runtime.create(Settings(home=Path(home), database_url=url), migrate=False)
            with transaction(runtime.sessions) as s:
                headers = {"Authorization": f"Bearer {tokens.create_token(s, 'marketer', 'bench')}"}
            with TestClient(create_app(runtime)) as client:
                for label, path in (
                    ("journey report, a year by day", "/api/v1/analytics/flows/bench?from=2025-06-01&to=2026-06-01&group=day"),
                    ("journey report, a year by week", "/api/v1/analytics/flows/bench?from=2025-06-01&to=2026-06-01&group=week"),
                    ("base health, two years by month", "/api/v1/analytics/base?from=2024-06-01&to=2026-06-01&group=month"),
                    ("base health, a year by day", "/api/v1/analytics/base?from=2025-06-01&to=2026-06-01&group=day"),
                    ("channels, a year by week", "/api/v1/analytics/channels?from=2025-06-01&to=2026-06-01&group=week"),
                ):
                    print(f"GET {label:34s} {timed(client, path, headers)}")
            runtime.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
