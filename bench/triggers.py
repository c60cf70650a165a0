"""Trigger latency: from an event arriving at the API to the journey's first step, under sustained load.

Starts its own PostgreSQL and Redis, a real `kaskad serve` (the API) and a
real `kaskad worker` (Dramatiq worker processes plus the scheduler), seeds
contacts and publishes a flow whose entry is the event ``cart_updated``
(deduped on the cart id; branch → send(test) → exit). A paced load generator
then posts events in batches to ``POST /api/v1/events`` at ``--rate`` events/s
for ``--seconds``; every ``--trigger-every``-th event is a ``cart_updated``
(the rest are product views that no journey listens to).

Printed, from the database afterwards:

- the rate actually sustained (events acknowledged / wall time, and how far
  the pacer fell behind its schedule);
- latency = first ``run_steps.at`` of the run − ``events.received_at`` of the
  event that started it (both stamped by the server): p50/p95/p99/max, split
  into arrival → dispatched (the scheduler read the event and enrolled) and
  dispatched → first step (claim, broker, worker);
- CPU seconds (user+sys) of every process — API, workers and scheduler,
  PostgreSQL backends, Redis, the load generator — per 1,000 events, and
  PostgreSQL transactions per 1,000 events.

    .venv/bin/python bench/triggers.py [--rate 5000] [--seconds 30] [--batch 500] [--trigger-every 10]
                                       [--contacts 100000] [--processes 2] [--threads 2] [--tick 0.05]
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import msgspec
import psycopg

from kaskad.config import Settings
from kaskad.flow import service
from kaskad.migrations import upgrade
from kaskad.runtime import Runtime
from kaskad.store.engine import transaction
from kaskad.testing.servers import PostgresServer, RedisServer, free_port, wait_port

from engine import descendants  # bench/engine.py, beside this script

TOKEN = "ksk_bench_admin_token_0123456789"
TRIGGER = "cart_updated"
FLOW = {
    "schema": "kaskad.flow/1", "key": "cart", "name": "abandoned cart (bench)",
    "entry": {"kind": "event", "event": TRIGGER, "dedupe": "properties.cart_id"},
    "reentry": {"policy": "concurrent"},
    "nodes": [
        {"id": "big", "kind": "branch", "cases": [
            {"when": {"kind": "attribute", "attribute": "spend", "op": "gte", "value": 500}, "next": "mail"}],
         "else": "mail"},
        {"id": "mail", "kind": "send", "channel": "test", "message": {"text": "Your cart {{ contact.external_id }}"},
         "next": "end"},
        {"id": "end", "kind": "exit"},
    ],
}
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, reaped: bool = True) -> float:
    """utime+stime of a live process, plus what it reaped from its children (cutime+cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(int(fields[i]) for i in ((11, 12, 13, 14) if reaped else (11, 12))) / CLK


def tree_cpu(pid: int) -> float:
    """CPU of a process tree: every live member, plus the reaped ones counted by their parents."""
    return sum(cpu_seconds(p) for p in [pid, *descendants(pid)])


def cpu_by_part(roots: dict[str, int]) -> dict[str, float]:
    worker = roots["worker"]
    own = cpu_seconds(worker, reaped=False)  # `kaskad worker`'s own process runs the scheduler
    return {"api": tree_cpu(roots["api"]), "scheduler": own, "dramatiq workers": tree_cpu(worker) - own,
            "postgres": tree_cpu(roots["postgres"]), "redis": tree_cpu(roots["redis"]), "load generator": self_cpu()}


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def seed(pg: PostgresServer, n: int) -> str:
    url = pg.create_database("bench_triggers")
    upgrade(url)
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user={pg.user} dbname=bench_triggers") as conn:
        with conn.cursor().copy("COPY contacts (external_id, attributes, tags) FROM STDIN") as copy:
            for i in range(n):
                copy.write_row((f"t{i}", msgspec.json.encode({"spend": i % 1000}).decode(), "[]"))
        conn.execute("ANALYZE")
    return url


def pg_counters(pg: PostgresServer) -> tuple[int, int]:
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user={pg.user} dbname=bench_triggers") as conn:
        row = conn.execute("SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted "
                           "FROM pg_stat_database WHERE datname = 'bench_triggers'").fetchone()
    return int(row[0]), int(row[1])


def batches(args) -> list[bytes]:
    total = int(args.rate * args.seconds)
    enc = msgspec.json.encode
    out = []
    for start in range(0, total, args.batch):
        events = []
        for i in range(start, min(start + args.batch, total)):
            contact = f"t{(i * 7919) % args.contacts}"
            if i % args.trigger_every == 0:
                events.append({"contact": contact, "name": TRIGGER, "id": f"e{i}",
                               "properties": {"cart_id": f"cart-{i}", "total": 1990 + i % 500}})
            else:
                events.append({"contact": contact, "name": "viewed_product", "id": f"e{i}",
                               "properties": {"sku": f"sku-{i % 977}"}})
        out.append(enc({"events": events}))
    return out


def load(base: str, bodies: list[bytes], args) -> dict:
    """Post ``bodies`` on a fixed schedule (one batch every batch/rate seconds) with a few client threads."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    interval = args.batch / args.rate
    acked, errors, lock = [0], [], threading.Lock()
    with httpx.Client(base_url=base, headers=headers, timeout=120,
                      limits=httpx.Limits(max_connections=args.clients)) as http:
        http.get("/health")

        def post(body: bytes) -> None:
            r = http.post("/api/v1/events", content=body)
            if r.status_code != 200 or r.json()["errors"]:
                errors.append(f"{r.status_code} {r.text[:300]}")
                return
            with lock:
                acked[0] += r.json()["stored"]

        behind = 0.0
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            futures = []
            for k, body in enumerate(bodies):
                due = t0 + k * interval
                lag = time.perf_counter() - due
                if lag < 0:
                    time.sleep(-lag)
                behind = max(behind, lag)
                # A pool with every client busy means the server is not keeping up: the
                # pacer waits here and the sustained rate shows it.
                while sum(not f.done() for f in futures) >= args.clients:
                    time.sleep(0.001)
                futures = [f for f in futures if not f.done()]
                futures.append(pool.submit(post, body))
        wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} batches failed, first: {errors[0]}")
    return {"acked": acked[0], "wall": wall, "behind": behind}


LATENCY_SQL = """
WITH firsts AS (
    SELECT r.id, e.received_at, e.dispatched_at, min(s.at) AS first_at,
           min(s.at) FILTER (WHERE s.node_id = 'mail' AND s.outcome = 'passed') AS sent_at
    FROM journey_runs r
    JOIN events e ON e.id = (r.context -> 'event' ->> 'id')::bigint
    JOIN run_steps s ON s.run_id = r.id
    GROUP BY r.id, e.received_at, e.dispatched_at
), ms AS (
    SELECT extract(epoch FROM first_at - received_at) * 1000 AS total,
           extract(epoch FROM dispatched_at - received_at) * 1000 AS dispatch,
           extract(epoch FROM first_at - dispatched_at) * 1000 AS step,
           extract(epoch FROM sent_at - received_at) * 1000 AS sent
    FROM firsts
)
SELECT count(*), {cols} FROM ms
"""


def latency(pg: PostgresServer) -> tuple[int, dict[str, list[float]]]:
    names = ("total", "dispatch", "step", "sent")
    cols = ", ".join(f"percentile_cont(array[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY {n}), max({n})" for n in names)
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user={pg.user} dbname=bench_triggers") as conn:
        row = conn.execute(LATENCY_SQL.format(cols=cols)).fetchone()
    out = {}
    for i, n in enumerate(names):
        pct, mx = row[1 + 2 * i], row[2 + 2 * i]
        out[n] = [*(pct or [0, 0, 0]), mx or 0]
    return row[0], out


class Sampler(threading.Thread):
    """Every half second: messages waiting in Redis and runs claimed (enqueued, not yet advanced)."""

    def __init__(self, pg: PostgresServer, redis_url: str):
        super().__init__(daemon=True)
        import redis

        self.redis = redis.Redis.from_url(redis_url)
        self.dsn = f"host=127.0.0.1 port={pg.port} user={pg.user} dbname=bench_triggers"
        self.samples: list[tuple[int, int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as c:
            while not self.stop.wait(0.5):
                queued = self.redis.llen("dramatiq:steps")
                claimed, due = c.execute("SELECT count(*) FILTER (WHERE status = 'claimed'), count(*) FILTER "
                                         "(WHERE status = 'active' AND wake_at <= now()) FROM journey_runs").fetchone()
                self.samples.append((queued, claimed, due))

    def summary(self) -> str:
        if not self.samples:
            return "no samples"
        cols = list(zip(*self.samples))
        return ", ".join(f"{name} mean {sum(v) / len(v):,.0f} max {max(v):,}"
                         for name, v in zip(("messages in Redis", "runs claimed", "runs due, unclaimed"), cols))


def wait_drained(pg: PostgresServer, expected: int, timeout: float) -> float:
    """Wait until every event is dispatched and every triggered run has passed its first node."""
    t0 = time.perf_counter()
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user={pg.user} dbname=bench_triggers", autocommit=True) as c:
        while time.perf_counter() - t0 < timeout:
            left = c.execute("SELECT count(*) FROM events WHERE dispatched_at IS NULL").fetchone()[0]
            stepped = c.execute("SELECT count(DISTINCT run_id) FROM run_steps").fetchone()[0]
            if left == 0 and stepped >= expected:
                return time.perf_counter() - t0
            time.sleep(0.2)
    raise SystemExit(f"not drained after {timeout}s: {left} events undispatched, {stepped}/{expected} runs stepped")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=5000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--trigger-every", type=int, default=10)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--api-workers", type=int, default=1)
    ap.add_argument("--tick", type=float, default=None, help="KASKAD_ENGINE_TICK (default: the server's own)")
    args = ap.parse_args()
    bodies = batches(args)
    pg = PostgresServer().start()
    redis = RedisServer().start()
    procs: list[subprocess.Popen] = []
    home = Path(tempfile.mkdtemp(prefix="kaskad-bench-triggers-"))
    try:
        url = seed(pg, args.contacts)
        runtime = Runtime.create(Settings(home=home, database_url=url), migrate=False)
        with transaction(runtime.sessions) as s:
            service.save(s, runtime.registry, msgspec.json.encode(FLOW))
            service.publish(s, runtime.registry, FLOW["key"])
        runtime.close()
        port = free_port()
        env = {**os.environ, "KASKAD_DATABASE_URL": url, "KASKAD_BROKER_URL": redis.url, "KASKAD_HOME": str(home),
               "KASKAD_ADMIN_TOKEN": TOKEN, "KASKAD_PORT": str(port), "KASKAD_WORKERS": str(args.api_workers)}
        if args.tick is not None:
            env["KASKAD_ENGINE_TICK"] = str(args.tick)
        procs.append(subprocess.Popen([sys.executable, "-m", "kaskad", "serve"], env=env, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=open(home / "serve.log", "wb")))
        procs.append(subprocess.Popen([sys.executable, "-m", "kaskad", "worker", "--processes", str(args.processes),
                                       "--threads", str(args.threads)], env=env, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=open(home / "worker.log", "wb")))
        wait_port(port, timeout=60)
        time.sleep(3)  # let the workers boot and the scheduler take the lead before the clock starts
        roots = {"api": procs[0].pid, "worker": procs[1].pid, "postgres": pg.proc.pid, "redis": redis.proc.pid}
        cpu0 = cpu_by_part(roots)
        pg0 = pg_counters(pg)
        triggers = sum(1 for i in range(int(args.rate * args.seconds)) if i % args.trigger_every == 0)
        sampler = Sampler(pg, redis.url)
        sampler.start()
        load0 = os.getloadavg()[0]
        r = load(f"http://127.0.0.1:{port}", bodies, args)
        drain = wait_drained(pg, triggers, timeout=300)
        sampler.stop.set()
        sampler.join()
        cpu1 = cpu_by_part(roots)
        pg1 = pg_counters(pg)
        n, lat = latency(pg)
        rate = r["acked"] / r["wall"]
        sustained = rate >= 0.98 * args.rate and r["behind"] < 1.0
        print(f"load: {r['acked']:,} events in {r['wall']:.1f} s = {rate:,.0f} events/s (target {args.rate:,.0f}/s, "
              f"batches of {args.batch}, {args.clients} clients; pacer at most {r['behind']:.2f} s behind) -> "
              f"{'sustained' if sustained else 'NOT sustained'}; {triggers:,} were {TRIGGER}; "
              f"backlog drained {drain:.1f} s after the last post")
        print(f"runs started by the trigger: {n:,} of {triggers:,}; while loaded: {sampler.summary()}")
        for key, label in (("total", "event received -> first step"), ("dispatch", "  received -> dispatched"),
                           ("step", "  dispatched -> first step"), ("sent", "event received -> message handed over")):
            p50, p95, p99, mx = lat[key]
            print(f"{label:40s} p50 {p50:7.0f} ms  p95 {p95:7.0f} ms  p99 {p99:7.0f} ms  max {mx:7.0f} ms")
        cpu = {k: cpu1[k] - cpu0[k] for k in cpu1}
        total = sum(cpu.values())
        per = ", ".join(f"{k} {v / r['acked'] * 1000:.3f}" for k, v in cpu.items())
        print(f"CPU per 1,000 events: {total / r['acked'] * 1000:.3f} s ({per}); "
              f"{total / (r['wall'] + drain):.2f} cores busy on average")
        print(f"PostgreSQL per 1,000 events: {(pg1[0] - pg0[0]) / r['acked'] * 1000:.1f} transactions, "
              f"{(pg1[1] - pg0[1]) / r['acked'] * 1000:,.0f} rows written; load average {load0:.2f} before, "
              f"{os.getloadavg()[0]:.2f} after")
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        redis.stop()
        pg.stop()


if __name__ == "__main__":
    main()
