"""Drive the journey engine from a test: the embedded StubBroker, ticked by hand.

    engine = EngineDriver(runtime)
    engine.drain()                 # dispatch events, claim due runs, advance them, until idle
    with clock.travel(t) as now:   # move time, then drain again to wake waits
        engine.drain()
"""

from __future__ import annotations

from typing import Any

from kaskad.engine import broker
from kaskad.engine.embedded import EmbeddedEngine


class EngineDriver(EmbeddedEngine):
    """The embedded engine with its worker running and its scheduler ticked by the test (jobs inline)."""

    def __init__(self, runtime: Any, threads: int = 2):
        super().__init__(runtime, threads)
        self.broker = self.actor.broker
        self.worker.start()

    def drain(self, rounds: int = 100) -> int:
        """Tick the scheduler and wait for the worker until a tick finds nothing to do."""
        total = 0
        for _ in range(rounds):
            n = self.scheduler.tick()
            self.broker.join(broker.QUEUE, fail_fast=True)
            self.worker.join()
            total += n
            if n == 0:
                return total
        raise AssertionError(f"the engine was still busy after {rounds} rounds")

    def close(self) -> None:
        self.stop()
