"""Dramatiq wiring: the broker, the ``advance`` actor, and the runtime the actor uses.

Embedded default: a StubBroker with an in-process worker. Production:
``KASKAD_BROKER_URL=redis://…`` and ``kaskad worker`` processes. A message
carries a batch of run ids and the claim token they were claimed under; the
database holds everything else.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker

log = logging.getLogger("kaskad.engine")
QUEUE = "steps"

_runtime: Any = None
_actor: Any = None


def _advance(run_ids: list[int], token: int) -> None:
    from kaskad.engine.batch import advance

    advance(_runtime, run_ids, token)


def setup(runtime: Any) -> dramatiq.Actor:
    """Create the broker for ``runtime`` and declare the actor on it (once per process)."""
    global _runtime, _actor
    _runtime = runtime
    if _actor is not None and runtime.extras.get("broker") is _actor.broker:
        return _actor
    url = runtime.settings.broker_url
    if url:
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=url)
    else:
        broker = StubBroker()
        broker.emit_after("process_boot")
    dramatiq.set_broker(broker)
    # A lost message is the sweeper's job, so the broker retries only briefly
    # (a database blip), never for hours.
    _actor = dramatiq.actor(_advance, actor_name="kaskad_advance", queue_name=QUEUE, broker=broker,
                            max_retries=3, min_backoff=1000, max_backoff=10_000, time_limit=15 * 60 * 1000)
    runtime.extras["broker"] = broker
    return _actor


def enqueue(run_ids: list[int], token: int) -> None:
    _actor.send(run_ids, token)
