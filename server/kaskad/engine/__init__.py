"""The journey engine: enrollment, the scheduler, batched advancing on Dramatiq, delivery.

See docs/engine.md. ``kaskad worker`` calls :func:`run_worker`.
"""


def run_worker(args) -> int:
    from kaskad.engine.worker import run_worker as _run

    return _run(args)
