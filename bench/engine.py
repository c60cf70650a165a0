"""Journey engine throughput on PostgreSQL + Redis with separate `kaskad worker` processes.

Seeds N contacts, publishes a five-node flow (branch → split → send(test) →
award(noop) → exit), enrolls everyone, starts `kaskad worker` (Dramatiq worker
processes plus the scheduler) and prints: enrollment rate, node-steps per
second end to end, time to the last run finished, and peak worker RSS. Then
runs the same flow through the one-message-per-contact-step baseline
(KASKAD_ENGINE_BATCH=1, KASKAD_ENGINE_STEPS=1) on a smaller N.

    .venv/bin/python bench/engine.py [--contacts 200000] [--baseline 20000] [--processes 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import msgspec
import psycopg
from sqlalchemy import func, insert, select

from kaskad import clock, periodic
from kaskad.config import Settings
from kaskad.engine.enroll import enroll_all
from kaskad.engine.models import NodeCount
from kaskad.flow import service
from kaskad.migrations import upgrade
from kaskad.runtime import Runtime
from kaskad.store.engine import transaction
from kaskad.store.models import JourneyRun, PeriodicRun, RunStep
from kaskad.testing.procstat import own_cpu_seconds, tree_cpu_seconds
from kaskad.testing.servers import PostgresServer, RedisServer

FLOW = {
    "schema": "kaskad.flow/1", "key": "bench", "name": "bench", "entry": {"kind": "api"},
    "nodes": [
        {"id": "rich", "kind": "branch", "cases": [
            {"when": {"kind": "attribute", "attribute": "spend", "op": "gte", "value": 500}, "next": "ab"}], "else": "ab"},
        {"id": "ab", "kind": "split", "paths": [{"name": "A", "weight": 50, "next": "send"},
                                                {"name": "B", "weight": 50, "next": "send"}]},
        {"id": "send", "kind": "send", "channel": "test", "message": {"text": "Hello {{ contact.external_id }}"},
         "next": "gift"},
        {"id": "gift", "kind": "award", "mechanic": "noop", "config": {"label": "bench"}, "next": "end"},
        {"id": "end", "kind": "exit"},
    ],
}


def seed(pg: PostgresServer, db: str, n: int) -> str:
    url = pg.create_database(db)
    upgrade(url)
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user={pg.user} dbname={db}") as conn:
        with conn.cursor().copy("COPY contacts (external_id, attributes, tags) FROM STDIN") as copy:
            for i in range(n):
                copy.write_row((f"b{i}", msgspec.json.encode({"spend": i % 1000}).decode(), "[]"))
    return url


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def descendants(pid: int) -> list[int]:
    kids = children(pid)
    return kids + [g for k in kids for g in descendants(k)]


def run(pg: PostgresServer, redis: RedisServer, n: int, args, env_extra: dict[str, str], label: str) -> dict:
    db = f"bench_{label}"
    url = seed(pg, db, n)
    home = Path(tempfile.mkdtemp(prefix="kaskad-bench-"))
    settings = Settings(home=home, database_url=url)
    runtime = Runtime.create(settings, migrate=False)
    with transaction(runtime.sessions) as s:
        service.save(s, runtime.registry, msgspec.json.encode(FLOW))
        service.publish(s, runtime.registry, "bench")
    t0 = time.perf_counter()
    res = enroll_all(runtime.sessions, "bench")
    enroll_s = time.perf_counter() - t0
    assert res.enrolled == n, res
    env = {**os.environ, "KASKAD_DATABASE_URL": url, "KASKAD_BROKER_URL": redis.url, "KASKAD_HOME": str(home),
           **env_extra}
    # The periodic jobs (analytics rebuilds, segment passes…) run on their own schedule, every
    # ten minutes to a day, recorded in periodic_runs: mark them as just run, as on a box that
    # has been up a while, so that this measures the engine. Their cost is measured after it.
    mark_jobs_run(runtime)
    if getattr(args, "statements", False):
        with psycopg.connect(f"host=127.0.0.1 port={pg.port} user={pg.user} dbname={db}", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
    cpu0 = {"pg": tree_cpu_seconds(pg.proc.pid)}
    t1 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "kaskad", "worker", "--processes", str(args.processes),
                             "--threads", str(args.threads)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=open(home / "worker.log", "wb"))
    peak = 0
    # Peak RSS per role: the `kaskad worker` parent (scheduler and periodic jobs), dramatiq's
    # supervisor, and the largest of its worker processes.
    roles = {"scheduler": 0, "supervisor": 0, "worker": 0}
    try:
        # The clock starts at the first node-step, once the worker processes have started:
        # their start-up (imports, connections; a few seconds of CPU) is not the engine's rate.
        while True:
            with runtime.sessions() as s:
                if s.scalar(select(RunStep.id).limit(1)) is not None:
                    break
            if proc.poll() is not None:
                raise SystemExit(f"worker died; see {home / 'worker.log'}")
            time.sleep(0.02)
        t2 = time.perf_counter()
        cpu1 = {"workers": tree_cpu_seconds(proc.pid), "scheduler": own_cpu_seconds(proc.pid),
                "pg": tree_cpu_seconds(pg.proc.pid), "redis": tree_cpu_seconds(redis.proc.pid)}
        while True:
            time.sleep(0.5)
            direct = children(proc.pid)
            workers = [rss_kb(p) for d in direct for p in descendants(d)]
            now = {"scheduler": rss_kb(proc.pid), "supervisor": sum(rss_kb(p) for p in direct),
                   "worker": max(workers, default=0)}
            for k, v in now.items():
                roles[k] = max(roles[k], v)
            peak = max(peak, now["scheduler"] + now["supervisor"] + sum(workers))
            with runtime.sessions() as s:  # anything left? (cheap: the first row of an index)
                left = s.scalar(select(JourneyRun.id).where(
                    JourneyRun.status.in_(("active", "waiting", "claimed"))).limit(1))
            if left is None:
                break
            if proc.poll() is not None:
                raise SystemExit(f"worker died; see {home / 'worker.log'}")
            if time.perf_counter() - t1 > args.timeout:
                raise SystemExit(f"{label}: runs still unfinished after {args.timeout}s")
        t3 = time.perf_counter()
        elapsed, startup = t3 - t2, t2 - t1
        cpu = {"workers": tree_cpu_seconds(proc.pid) - cpu1["workers"],
               "scheduler": own_cpu_seconds(proc.pid) - cpu1["scheduler"],
               "pg": tree_cpu_seconds(pg.proc.pid) - cpu1["pg"],
               "redis": tree_cpu_seconds(redis.proc.pid) - cpu1["redis"]}
        startup_cpu = cpu1["workers"] + cpu1["pg"] - cpu0["pg"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    with runtime.sessions() as s:
        steps = s.scalar(select(func.sum(NodeCount.n)).where(~NodeCount.port.startswith("@")))
    jobs = time_jobs(runtime) if args.jobs and label == "batched" else {}
    runtime.close()
    return {"n": n, "enroll_s": enroll_s, "elapsed": elapsed, "startup": startup, "startup_cpu": startup_cpu,
            "steps": steps, "peak_rss_mb": peak / 1024,
            "roles_mb": {k: v / 1024 for k, v in roles.items()},
            "cpu": cpu, "jobs": jobs}


def mark_jobs_run(runtime: Runtime) -> None:
    now = datetime.now(timezone.utc)
    with transaction(runtime.sessions) as s:
        s.execute(insert(PeriodicRun), [{"name": n, "started_at": now, "seconds": 0.0} for n in periodic.load_jobs()])


def time_jobs(runtime: Runtime) -> dict[str, float]:
    """Run every periodic job once over what the engine left, and return how long each took."""
    periodic.run_due(runtime, clock.now(), force=True)
    with runtime.sessions() as s:
        return dict(s.execute(select(PeriodicRun.name, PeriodicRun.seconds)).all())


def roles_line(r: dict) -> str:
    m = r["roles_mb"]
    return (f"  peak RSS by process: scheduler {m['scheduler']:.0f} MB, dramatiq supervisor {m['supervisor']:.0f} MB, "
            f"largest worker process {m['worker']:.0f} MB")


def cpu_line(r: dict) -> str:
    """CPU per node-step of each part (the bench's own polling included in PostgreSQL's share)."""
    per = {k: v / r["steps"] * 1e6 for k, v in r["cpu"].items()}
    total = per["workers"] + per["pg"] + per["redis"]  # "workers" is the whole `kaskad worker` tree
    return (f"  CPU per node-step: workers {per['workers']:.0f} µs (of which the scheduler process "
            f"{per['scheduler']:.0f} µs), PostgreSQL {per['pg']:.0f} µs, "
            f"redis {per['redis']:.0f} µs = {total:.0f} µs; CPU-bound on {os.cpu_count()} cores: "
            f"{os.cpu_count() * 1e6 / total:,.0f} node-steps/s; load average {os.getloadavg()[0]:.1f}")


def print_statements(pg: PostgresServer, db: str, top: int = 15) -> None:
    with psycopg.connect(f"host=127.0.0.1 port={pg.port} user={pg.user} dbname={db}", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT calls, total_exec_time, rows, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY total_exec_time DESC LIMIT %s", [top]).fetchall()
    print("  statements by time: calls, ms, rows, statement")
    for calls, ms, n, query in rows:
        print(f"  {calls:>8} {ms:>9.0f} {n:>9}  {query[:110]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=200_000)
    ap.add_argument("--baseline", type=int, default=20_000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--statements", action="store_true", help="print the PostgreSQL statements that took most time")
    ap.add_argument("--no-jobs", dest="jobs", action="store_false", help="do not time the periodic jobs afterwards")
    args = ap.parse_args()
    pg = PostgresServer().start(settings={"shared_preload_libraries": "pg_stat_statements"} if args.statements else None)
    redis = RedisServer().start()
    try:
        r = run(pg, redis, args.contacts, args, {"KASKAD_ENGINE_BATCH": str(args.batch)}, "batched")
        print(f"batched   N={r['n']:,}: enrollment {r['n'] / r['enroll_s']:,.0f} contacts/s; "
              f"{r['steps']:,} node-steps in {r['elapsed']:.1f}s = {r['steps'] / r['elapsed']:,.0f} node-steps/s "
              f"from the first step; last run finished {r['startup'] + r['elapsed']:.1f}s after starting the "
              f"workers (start-up {r['startup']:.1f}s, {r['startup_cpu']:.1f}s CPU); peak worker RSS "
              f"{r['peak_rss_mb']:.0f} MB ({args.processes} processes × {args.threads} threads + scheduler)")
        print(roles_line(r))
        print(cpu_line(r))
        if r["jobs"]:
            slow = sorted(r["jobs"].items(), key=lambda kv: -kv[1])
            print(f"  periodic jobs, each run once afterwards over these runs (not during the measurement): "
                  f"{sum(r['jobs'].values()):.1f}s in all; " + ", ".join(f"{n} {t:.1f}s" for n, t in slow[:4]))
        if args.statements:
            print_statements(pg, "bench_batched")
        if args.baseline:
            b = run(pg, redis, args.baseline, args, {"KASKAD_ENGINE_BATCH": "1", "KASKAD_ENGINE_STEPS": "1"}, "baseline")
            print(f"baseline  N={b['n']:,}: {b['steps']:,} node-steps in {b['elapsed']:.1f}s = "
                  f"{b['steps'] / b['elapsed']:,.0f} node-steps/s (one message per contact-step); "
                  f"peak worker RSS {b['peak_rss_mb']:.0f} MB")
            print(cpu_line(b))
            print(f"batched / baseline: {(r['steps'] / r['elapsed']) / (b['steps'] / b['elapsed']):.1f}×")
    finally:
        redis.stop()
        pg.stop()


if __name__ == "__main__":
    main()
