"""Ingestion throughput through the HTTP API, on SQLite and on PostgreSQL.

Starts its own PostgreSQL server and, for each backend, a real `kaskad serve`
on a free loopback port; posts contacts and events in batches over HTTP with a
few concurrent clients and prints contacts upserted/s and events stored/s.

    .venv/bin/python bench/ingest.py [--contacts 50000] [--events 200000] [--batch 1000] [--clients 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import msgspec

from kaskad.testing.servers import PostgresServer, free_port, wait_port

TOKEN = "ksk_bench_admin_token_0123456789"


def start_server(db_url: str | None, home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "KASKAD_HOME": str(home), "KASKAD_ADMIN_TOKEN": TOKEN, "KASKAD_PORT": str(port)}
    if db_url:
        env["KASKAD_DATABASE_URL"] = db_url
    proc = subprocess.Popen(
        [sys.executable, "-m", "kaskad", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=open(home / "serve.log", "wb")
    )
    wait_port(port, timeout=60)
    return proc, f"http://127.0.0.1:{port}"


def post_all(base: str, path: str, batches: list[bytes], clients: int) -> float:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
        http.get("/health")

        def send(body: bytes) -> None:
            r = http.post(path, content=body)
            if r.status_code != 200 or r.json()["errors"]:
                raise SystemExit(f"{path}: {r.status_code} {r.text[:300]}")

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(send, batches))
        return time.perf_counter() - t0


def make_batches(n_contacts: int, n_events: int, batch: int, tag: str):
    contacts = [
        {
            "external_id": f"{tag}-c{i}",
            "email": f"user{i}@example.com",
            "timezone": "Europe/Moscow",
            "attributes": {"first_name": f"User{i}", "city": "Moscow" if i % 3 else "Kazan", "birthday": "1990-05-17"},
            "consents": [{"channel": "email", "status": "granted"}],
        }
        for i in range(n_contacts)
    ]
    events = [
        {
            "contact": f"{tag}-c{i % n_contacts}",
            "name": ("viewed_product", "cart_updated", "search")[i % 3],
            "id": f"{tag}-e{i}",
            "time": "2026-11-20T18:04:05+03:00",
            "properties": {"sku": f"sku-{i % 977}", "price": 590 + i % 50},
        }
        for i in range(n_events)
    ]
    enc = msgspec.json.encode
    return (
        [enc({"contacts": contacts[i : i + batch]}) for i in range(0, len(contacts), batch)],
        [enc({"events": events[i : i + batch]}) for i in range(0, len(events), batch)],
    )


def run(name: str, db_url: str | None, args) -> None:
    home = Path(tempfile.mkdtemp(prefix=f"kaskad-bench-{name}-"))
    proc, base = start_server(db_url, home)
    try:
        contact_batches, event_batches = make_batches(args.contacts, args.events, args.batch, name)
        t = post_all(base, "/api/v1/contacts", contact_batches, args.clients)
        print(f"{name:10s} contacts upserted: {args.contacts / t:10,.0f}/s  ({args.contacts:,} in {t:.2f}s)", flush=True)
        t = post_all(base, "/api/v1/contacts", contact_batches, args.clients)
        print(f"{name:10s} contacts updated:  {args.contacts / t:10,.0f}/s  ({args.contacts:,} in {t:.2f}s)", flush=True)
        t = post_all(base, "/api/v1/events", event_batches, args.clients)
        print(f"{name:10s} events stored:     {args.events / t:10,.0f}/s  ({args.events:,} in {t:.2f}s, batches of {args.batch})", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contacts", type=int, default=50_000)
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--only", choices=["sqlite", "postgres"])
    args = p.parse_args()
    print(f"ingestion through the API, {os.cpu_count()} cores, {args.clients} concurrent clients", flush=True)
    if args.only != "postgres":
        run("sqlite", None, args)
    if args.only != "sqlite":
        pg = PostgresServer().start()
        try:
            run("postgres", pg.create_database("bench"), args)
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
