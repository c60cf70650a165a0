"""Loyalty checkout throughput through the real API on PostgreSQL.

Starts its own PostgreSQL and a ``kaskad serve`` subprocess on a free loopback port,
seeds contacts with points and personal promo codes, then drives quote and redeem
(3–8 item carts, points, codes) from concurrent clients and prints calls per second.

    .venv/bin/python bench/loyalty.py [--contacts 2000] [--clients 16] [--seconds 15] [--servers 1] [--workers 2]
                                      [--no-durable] [--statements] [--calls quote,redeem]

PostgreSQL runs durable as in production (fsync, synchronous_commit and full_page_writes
on: a redeem's commit waits for its WAL on disk); ``--no-durable`` runs it as the tests do.
Besides calls per second it prints the CPU each call cost the server, PostgreSQL and this
client, and the rate the box's cores would give if the three were all that ran on it: on a
shared machine the wall-clock rate mostly measures the neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from kaskad import clock
from kaskad.testing.procstat import tree_cpu_seconds
from kaskad.testing.servers import PostgresServer, free_port, wait_port

CATEGORIES = ["tea", "coffee", "ware", "snacks", "gifts"]


def seed(url: str, contacts: int) -> None:
    """Contacts, two lots each (one expiring, one not), a personal 10% code each, one shared code.
    Written in bulk: the same rows and ledger entries ``ledger.earn`` would write, much faster."""
    from sqlalchemy import insert, select

    from kaskad.loyalty.models import LedgerEntry, LoyaltyAccount, LoyaltyCode, Operation, PointLot
    from kaskad.migrations import upgrade
    from kaskad.store.engine import make_engine, make_sessionmaker, transaction
    from kaskad.store.models import Contact

    upgrade(url)
    engine = make_engine(url)
    now = clock.now()
    later = now + timedelta(days=200)
    with transaction(make_sessionmaker(engine)) as s:
        s.execute(insert(Contact), [{"external_id": f"c{i}"} for i in range(contacts)])
        ids = dict(s.execute(select(Contact.external_id, Contact.id)).all())
        cids = [ids[f"c{i}"] for i in range(contacts)]
        s.execute(insert(LoyaltyAccount), [{"contact_id": c} for c in cids])
        lots = [(c, Decimal(5000), later, f"seed:{i}") for i, c in enumerate(cids)]
        lots += [(c, Decimal(3000), None, f"seed2:{i}") for i, c in enumerate(cids)]
        s.execute(insert(Operation), [{"key": k, "kind": "earn", "contact_id": c, "result": {}, "created_at": now}
                                      for c, _, _, k in lots])
        ops = dict(s.execute(select(Operation.key, Operation.id)).all())
        lot_ids = s.execute(insert(PointLot).returning(PointLot.id, sort_by_parameter_order=True), [
            {"contact_id": c, "amount": pts, "remaining": pts, "reason": "seed", "available_at": now,
             "expires_at": exp, "created_at": now} for c, pts, exp, _ in lots]).scalars().all()
        s.execute(insert(LedgerEntry), [
            {"contact_id": c, "lot_id": lot, "operation_id": ops[k], "kind": "earn", "amount": pts,
             "reason": "seed", "created_at": now} for (c, pts, _, k), lot in zip(lots, lot_ids)])
        s.execute(insert(LoyaltyCode), [
            {"code": f"P{i}-X", "kind": "promo", "contact_id": c, "percent": Decimal(10), "valid_from": now,
             "created_at": now, "details": {}} for i, c in enumerate(cids)])
        s.execute(insert(LoyaltyCode).values(code="EVERYONE5", kind="promo", percent=Decimal(5), valid_from=now,
                                             created_at=now, details={}))
    # Planner statistics, as a production database has them: without them (autovacuum has not
    # come round yet after a bulk load) PostgreSQL guesses and scans all codes on every redeem.
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    engine.dispose()


def cart(rng: random.Random, contacts: int) -> dict:
    i = rng.randrange(contacts)
    items = [
        {"sku": f"SKU-{rng.randrange(500)}", "category": rng.choice(CATEGORIES),
         "quantity": rng.randint(1, 3), "price": f"{rng.randint(100, 5000) / 100:.2f}"}
        for _ in range(rng.randint(3, 8))
    ]
    codes = [f"P{i}-X"] if rng.random() < 0.5 else []
    if rng.random() < 0.1:
        codes.append("EVERYONE5")
    subtotal = sum(Decimal(it["price"]) * it["quantity"] for it in items)
    # at most a fifth of the order in points: within the default caps, so a redeem is never refused
    points = min(rng.choice([0, 0, 10, 25, 50]), int(subtotal / 5))
    return {"items": items, "currency": "EUR", "contact": f"c{i}", "codes": codes, "points": points}


async def _client(host: str, port: int, requests: list[tuple[bytes, bytes]], keys, stop: float, tally: dict) -> None:
    """One keep-alive HTTP/1.1 connection sending ``requests`` in turn until ``stop``.
    Raw asyncio streams, not an HTTP library: the load generator shares the box's two
    cores with the server, and a light client leaves them to the server. A request is sent
    as its two halves with a fresh idempotency key from ``keys`` between them (nothing, for
    a quote): the carts come round again in a long run, a key never does."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        i = 0
        while time.monotonic() < stop:
            t = time.perf_counter()
            head, tail = requests[i % len(requests)]
            writer.write(head + next(keys) + tail if tail else head)
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(head.lower().split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
            body = await reader.readexactly(length)
            tally["lat"].append(time.perf_counter() - t)
            if status == 200:
                tally["ok"] += 1
            else:
                tally["bad"] += 1
                if tally["bad"] < 3:
                    print("  refused:", status, body[:200].decode(errors="replace"), file=sys.stderr)
    finally:
        writer.close()


KEY = "k" * 16  # where a redeem's idempotency key goes: as long as the keys sent in its place


def fresh_keys():
    """Idempotency keys never sent before: a random prefix for this run, then a counter (16 characters)."""
    prefix = secrets.token_hex(4).encode()
    return (prefix + b"%08x" % n for n in itertools.count())


def requests_for(path: str, token: str, port: int, n: int, contacts: int, seed_: int) -> list[tuple[bytes, bytes]]:
    """``n`` requests as the bytes before and after the idempotency key (``b""`` after, for a quote)."""
    rng = random.Random(seed_)
    out = []
    for _ in range(n):
        body = cart(rng, contacts)
        if path.endswith("redeem"):
            body["idempotency_key"] = KEY
        data = json.dumps(body).encode()
        request = (f"POST /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        head, _, tail = request.partition(KEY.encode())
        out.append((head, tail))
    return out


def drive(ports: list[int], reqs: list[list[tuple[bytes, bytes]]], seconds: float) -> tuple[int, int, list[float]]:
    """One connection per list of requests (carts; each redeem sent with a fresh idempotency key), for ``seconds``."""
    tally = {"ok": 0, "bad": 0, "lat": []}
    clients = len(reqs)
    keys = fresh_keys()

    async def run():
        stop = time.monotonic() + seconds
        await asyncio.gather(*(_client("127.0.0.1", ports[n % len(ports)], reqs[n], keys, stop, tally) for n in range(clients)))

    asyncio.run(run())
    return tally["ok"], tally["bad"], sorted(tally["lat"])


_sessions = [0]


def statements(pg: PostgresServer, what: str, calls: int = 1) -> None:
    """Reset pg_stat_statements, or print the statements since by time, per measured call."""
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user={pg.user} dbname=bench", autocommit=True) as conn:
        sessions = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = 'bench'").fetchone()[0]
        if what == "reset":
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
            _sessions[0] = sessions
            return
        rows = conn.execute(
            "SELECT calls, total_exec_time, total_plan_time, regexp_replace(query, '\\s+', ' ', 'g') "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'bench') "
            "ORDER BY total_exec_time + total_plan_time DESC LIMIT 15").fetchall()
    # a connection opened during the run is a PostgreSQL backend started (and its statements planned afresh)
    print(f"{'':18s} database connections opened during the run: {sessions - _sessions[0] - 1}")
    print(f"{'':18s} statements per call, µs exec + plan per call: calls/call, exec, plan, statement")
    for n, exec_ms, plan_ms, query in rows:
        print(f"{'':18s} {n / calls:5.2f} {exec_ms * 1000 / calls:7.0f} {plan_ms * 1000 / calls:6.0f}  {query[:120]}")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--contacts", type=int, default=2000)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--servers", type=int, default=1, help="kaskad serve processes sharing the database")
    p.add_argument("--workers", type=int, default=2, help="worker processes of each kaskad serve (--workers)")
    p.add_argument("--no-durable", dest="durable", action="store_false",
                   help="PostgreSQL without fsync and synchronous_commit, as the tests run it (not production)")
    p.add_argument("--calls", default="quote,redeem", help="which calls to measure, comma-separated")
    p.add_argument("--statements", action="store_true",
                   help="print the PostgreSQL statements of each measured run by time (pg_stat_statements)")
    args = p.parse_args()
    pg = PostgresServer().start(durable=args.durable, settings={"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track_planning": "on"}
                                if args.statements else None)
    servers: list[subprocess.Popen] = []
    try:
        url = pg.create_database("bench")
        t = time.perf_counter()
        seed(url, args.contacts)
        print(f"seeded {args.contacts} contacts (2 lots + a personal code each) in {time.perf_counter() - t:.1f}s")
        token = secrets.token_urlsafe(24)
        servers, ports = [], []
        command = ["kaskad", "serve", "--host", "127.0.0.1"] + (["--workers", str(args.workers)] if args.workers > 1 else [])
        for k in range(args.servers):
            port = free_port()
            env = {**os.environ, "KASKAD_DATABASE_URL": url, "KASKAD_ADMIN_TOKEN": token,
                   "KASKAD_HOME": str(pg.dir / f"home{k}"), "KASKAD_PORT": str(port)}
            servers.append(subprocess.Popen([str(Path(sys.executable).parent / command[0]), *command[1:]], env=env, stdout=subprocess.DEVNULL, stderr=open(pg.dir / f"serve{k}.log", "wb")))
            wait_port(port, timeout=60)
            ports.append(port)
        print(f"{args.servers} x `{' '.join(command)}`, PostgreSQL on :{pg.port} "
              f"({'durable: fsync and synchronous_commit on' if args.durable else 'NOT durable: fsync and synchronous_commit off'}); "
              f"{args.clients} concurrent connections, {args.seconds:.0f}s each, carts of 3-8 items, half with a personal "
              f"code, some points; load average before {os.getloadavg()[0]:.1f}")
        for path in [f"/checkout/{c.strip()}" for c in args.calls.split(",")]:
            reqs = [requests_for(path, token, ports[n % len(ports)], 3000, args.contacts, secrets.randbits(32))
                    for n in range(args.clients)]
            drive(ports, reqs, 2)  # warm up
            if args.statements:
                statements(pg, "reset")
            cpu = [sum(tree_cpu_seconds(sv.pid) for sv in servers), tree_cpu_seconds(pg.proc.pid), time.process_time()]
            ok, bad, lat = drive(ports, reqs, args.seconds)
            after = [sum(tree_cpu_seconds(sv.pid) for sv in servers), tree_cpu_seconds(pg.proc.pid), time.process_time()]
            server, db, client = (b - a for a, b in zip(cpu, after))
            n = len(lat) or 1
            per_call = (server + db + client) / n
            print(f"{path:18s} {ok / args.seconds:8.0f} calls/s ok  ({bad} refused)  "
                  f"p50 {lat[n // 2] * 1000:.1f} ms  p99 {lat[int(n * 0.99)] * 1000:.1f} ms\n"
                  f"{'':18s} CPU per call: server {server / n * 1000:.2f} ms, PostgreSQL {db / n * 1000:.2f} ms, "
                  f"this client {client / n * 1000:.2f} ms  (load average {os.getloadavg()[0]:.1f})\n"
                  f"{'':18s} {os.cpu_count()} cores / {per_call * 1000:.2f} ms = {os.cpu_count() / per_call:.0f} calls/s "
                  f"if nothing else ran")
            if args.statements:
                statements(pg, "print", n)
        return 0
    finally:
        for sv in servers:
            sv.terminate()
            sv.wait(timeout=20)
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
