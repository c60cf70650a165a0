"""Loyalty checkout throughput through the real API on PostgreSQL.

Starts its own PostgreSQL and a ``kaskad serve`` subprocess on a free loopback port,
seeds contacts with points and personal promo codes, then drives quote and redeem
(3–8 item carts, points, codes) from concurrent clients and prints calls per second.

    .venv/bin/python bench/loyalty.py [--contacts 2000] [--clients 16] [--seconds 15] [--servers 1]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from kaskad import clock
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


def drive(bases: list[str], token: str, path: str, clients: int, seconds: float, contacts: int) -> tuple[int, int, list[float]]:
    stop = time.monotonic() + seconds
    ok, bad, lat = [0], [0], []
    lock = threading.Lock()

    def worker(n):
        rng = random.Random(n)
        with httpx.Client(base_url=bases[n % len(bases)], headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            while time.monotonic() < stop:
                body = cart(rng, contacts)
                if path.endswith("redeem"):
                    body["idempotency_key"] = secrets.token_hex(8)
                t = time.perf_counter()
                r = http.post(path, json=body)
                dt = time.perf_counter() - t
                with lock:
                    lat.append(dt)
                    if r.status_code == 200:
                        ok[0] += 1
                    else:
                        bad[0] += 1
                        if bad[0] < 3:
                            print("  refused:", r.status_code, r.text[:200], file=sys.stderr)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ok[0], bad[0], sorted(lat)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--contacts", type=int, default=2000)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--servers", type=int, default=1, help="kaskad serve processes sharing the database")
    args = p.parse_args()
    pg = PostgresServer().start()
    servers: list[subprocess.Popen] = []
    try:
        url = pg.create_database("bench")
        t = time.perf_counter()
        seed(url, args.contacts)
        print(f"seeded {args.contacts} contacts (2 lots + a personal code each) in {time.perf_counter() - t:.1f}s")
        token = secrets.token_urlsafe(24)
        servers, bases = [], []
        for k in range(args.servers):
            port = free_port()
            env = {**os.environ, "KASKAD_DATABASE_URL": url, "KASKAD_ADMIN_TOKEN": token,
                   "KASKAD_HOME": str(pg.dir / f"home{k}"), "KASKAD_PORT": str(port)}
            servers.append(subprocess.Popen([str(Path(sys.executable).parent / "kaskad"), "serve", "--host", "127.0.0.1"],
                                            env=env, stdout=subprocess.DEVNULL, stderr=open(pg.dir / f"serve{k}.log", "wb")))
            wait_port(port, timeout=60)
            bases.append(f"http://127.0.0.1:{port}/api/v1")
        print(f"{args.servers} x kaskad serve, PostgreSQL on :{pg.port}; {args.clients} concurrent clients, "
              f"{args.seconds:.0f}s each, carts of 3-8 items, half with a personal code, some points")
        for path in ("/checkout/quote", "/checkout/redeem"):
            drive(bases, token, path, args.clients, 2, args.contacts)  # warm up
            cpu = sum(cpu_seconds(sv.pid) for sv in servers)
            ok, bad, lat = drive(bases, token, path, args.clients, args.seconds, args.contacts)
            cpu = sum(cpu_seconds(sv.pid) for sv in servers) - cpu
            n = len(lat) or 1
            print(f"{path:18s} {ok / args.seconds:8.0f} calls/s ok  ({bad} refused)  "
                  f"p50 {lat[n // 2] * 1000:.1f} ms  p99 {lat[int(n * 0.99)] * 1000:.1f} ms  "
                  f"server CPU {cpu / args.seconds * 100:.0f}% of a core, {cpu / max(n, 1) * 1000:.2f} ms per call")
        return 0
    finally:
        for sv in servers:
            sv.terminate()
            sv.wait(timeout=20)
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
