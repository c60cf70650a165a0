"""``kaskad worker``: Dramatiq worker processes that advance journeys, and the scheduler."""

from __future__ import annotations


def worker(args) -> int:
    from kaskad.engine import run_worker

    return int(run_worker(args) or 0)


def add_commands(sub) -> None:
    p = sub.add_parser("worker", help="run Dramatiq worker processes (needs KASKAD_BROKER_URL)")
    p.add_argument("--processes", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--threads", type=int, default=None, help="threads per process")
    p.add_argument("--no-scheduler", action="store_true", help="only work; let another process schedule")
    p.set_defaults(func=worker)
