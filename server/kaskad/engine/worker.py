"""``kaskad worker``: Dramatiq worker processes plus the (leader-elected) scheduler.

The parent process runs the scheduler loop and starts ``dramatiq`` with
:mod:`kaskad.engine.entry` as its broker module; each worker process builds its
own runtime from the environment.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

from kaskad.config import Settings

log = logging.getLogger("kaskad.worker")


def run_worker(args) -> int:
    settings = Settings.from_env()
    if not settings.broker_url:
        print("kaskad worker needs KASKAD_BROKER_URL=redis://… (the embedded default runs the worker inside "
              "'kaskad serve')", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cmd = [sys.executable, "-m", "dramatiq", "kaskad.engine.entry", "--queues", "steps",
           "--processes", str(args.processes or os.cpu_count() or 1), "--threads", str(args.threads or 4)]
    # Dramatiq's Redis consumer polls an empty queue with a backoff that grows to
    # this many milliseconds (1,000 by default): up to a second between the
    # scheduler's enqueue and a worker noticing. A tenth of a second costs each
    # idle process ten Redis round trips a second; the embedded worker uses the same.
    env = {**os.environ}
    env.setdefault("dramatiq_worker_timeout", "100")
    proc = subprocess.Popen(cmd, env=env)
    scheduler = None
    if not getattr(args, "no_scheduler", False):
        from kaskad.engine import broker
        from kaskad.engine.scheduler import Scheduler
        from kaskad.runtime import Runtime

        runtime = Runtime.create(settings, migrate=False)
        broker.setup(runtime)
        scheduler = Scheduler(runtime, broker.enqueue).start()

    def stop(signum, frame):
        proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return proc.wait()
    finally:
        if scheduler is not None:
            scheduler.stop()
