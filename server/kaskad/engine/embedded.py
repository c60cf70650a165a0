"""The embedded default: ``kaskad serve`` runs a StubBroker worker and the scheduler in-process."""

from __future__ import annotations

from typing import Any

from dramatiq import Worker

from kaskad.engine import broker
from kaskad.engine.scheduler import Scheduler


class EmbeddedEngine:
    def __init__(self, runtime: Any, threads: int = 2):
        self.runtime = runtime
        self.actor = broker.setup(runtime)
        self.worker = Worker(self.actor.broker, worker_threads=threads, worker_timeout=100)
        self.scheduler = Scheduler(runtime, broker.enqueue)

    def start(self) -> "EmbeddedEngine":
        self.worker.start()
        self.scheduler.start()
        return self

    def stop(self) -> None:
        self.scheduler.stop()
        self.worker.stop()


def attach(runtime: Any) -> EmbeddedEngine:
    """Start the engine with the API server and stop it when the server stops."""
    engine = EmbeddedEngine(runtime)
    runtime.extras["engine"] = engine

    def start() -> None:
        engine.start()

    async def stop() -> None:
        engine.stop()

    runtime.extras.setdefault("on_startup", []).append(start)
    runtime.extras.setdefault("on_shutdown", []).append(stop)
    return engine
