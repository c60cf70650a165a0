"""``kaskad worker``: Dramatiq worker processes that advance journeys.

Until the journey engine (``kaskad.engine``) is part of the build, this says
so and exits with status 2 rather than pretending to work.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys


def worker(args) -> int:
    if importlib.util.find_spec("kaskad.engine") is None or not hasattr(
        importlib.import_module("kaskad.engine"), "run_worker"
    ):
        print(
            "kaskad worker needs the journey engine (kaskad.engine), which this build does not include yet;"
            " 'kaskad serve' stores flows, contacts, orders and events meanwhile.",
            file=sys.stderr,
        )
        return 2
    from kaskad.engine import run_worker

    return int(run_worker(args) or 0)


def add_commands(sub) -> None:
    p = sub.add_parser("worker", help="run Dramatiq worker processes (needs KASKAD_BROKER_URL)")
    p.add_argument("--processes", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--threads", type=int, default=None, help="threads per process")
    p.add_argument("--no-scheduler", action="store_true", help="only work; let another process schedule")
    p.set_defaults(func=worker)
