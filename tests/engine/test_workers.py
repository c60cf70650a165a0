"""Production shape: PostgreSQL + a real redis-server + separate `kaskad worker` processes.

The fault tests kill worker processes with SIGKILL (and, separately, restart
redis-server) in the middle of a broadcast, then check that every run finished
and every contact got each message exactly once — in the outbox and in what
the test channel (a provider that deduplicates on the message key) recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kaskad.engine.enroll import enroll_all
from kaskad.store.models import JourneyRun, OutboxMessage
from kaskad_channels.test import read_log

from .helpers import flow_doc, publish

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow, pytest.mark.xdist_group("workers")]

N = 3000
BROADCAST = flow_doc("broadcast", [
    {"id": "ab", "kind": "split", "paths": [{"name": "A", "weight": 50, "next": "first"},
                                            {"name": "B", "weight": 50, "next": "first"}]},
    {"id": "first", "kind": "send", "channel": "test", "message": {"text": "one {{ contact.external_id }}"},
     "next": "gift"},
    {"id": "gift", "kind": "award", "mechanic": "noop", "next": "second"},
    {"id": "second", "kind": "send", "channel": "test", "message": {"text": "two {{ contact.external_id }}"},
     "next": "end"},
    {"id": "end", "kind": "exit"},
])


@pytest.fixture
def prod(pg_url, redis_server, tmp_path):
    from kaskad.testing.fixtures import make_runtime

    runtime = make_runtime(pg_url, tmp_path)
    env = {**os.environ, "KASKAD_DATABASE_URL": pg_url, "KASKAD_BROKER_URL": redis_server.url,
           "KASKAD_HOME": str(tmp_path), "KASKAD_TEST_CHANNEL_LOG": str(tmp_path / "sent"),
           "KASKAD_ENGINE_LEASE": "8", "KASKAD_ENGINE_TICK": "0.1", "KASKAD_ENGINE_BATCH": "100"}
    workers: list[subprocess.Popen] = []

    def start(name: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "kaskad", "worker", "--processes", "2", "--threads", "2"],
                                env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / f"{name}.log", "ab"))
        workers.append(proc)
        return proc

    yield runtime, start, tmp_path
    for proc in workers:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    runtime.close()


def _seed(runtime) -> None:
    from kaskad.store.engine import transaction
    from kaskad.store.models import Contact

    with transaction(runtime.sessions) as s:
        s.add_all([Contact(external_id=f"w{i}", attributes={}, tags=[]) for i in range(N)])
    publish(runtime, BROADCAST)


def _count(runtime, q) -> int:
    with runtime.sessions() as s:
        return s.scalar(q) or 0


def _sent(runtime) -> int:
    return _count(runtime, select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent"))


def _unfinished(runtime) -> int:
    return _count(runtime, select(func.count()).select_from(JourneyRun).where(
        JourneyRun.status.in_(("active", "waiting", "claimed"))))


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def _check_exactly_once(runtime, log: Path) -> None:
    with runtime.sessions() as s:
        assert dict(s.execute(select(JourneyRun.status, func.count()).group_by(JourneyRun.status)).all()) == {"exited": N}
        rows = s.execute(select(OutboxMessage.key, OutboxMessage.status)).all()
    assert len(rows) == 2 * N
    assert {st for _, st in rows} == {"sent"}
    recorded = [m["key"] for m in read_log(str(log))]
    assert len(recorded) == len(set(recorded)) == 2 * N, "a contact got a message twice, or not at all"
    assert set(recorded) == {k for k, _ in rows}


def test_sigkill_workers_mid_broadcast(prod):
    runtime, start, tmp = prod
    _seed(runtime)
    a = start("a")
    b = start("b")  # two schedulers: one leads through the advisory lock, the other stands by
    assert enroll_all(runtime.sessions, "broadcast").enrolled == N
    _wait(lambda: _sent(runtime) >= N // 3, 120, "a third of the messages")
    os.killpg(a.pid, signal.SIGKILL)
    a.wait()
    _wait(lambda: _sent(runtime) >= N, 120, "more messages after the kill")
    os.killpg(b.pid, signal.SIGKILL)  # the other one too, mid-way
    b.wait()
    assert _unfinished(runtime) > 0, "the broadcast finished before the second kill; make it bigger"
    start("a2")
    _wait(lambda: _unfinished(runtime) == 0, 180, "every run to finish after the restart")
    _check_exactly_once(runtime, tmp / "sent")
    leads = sum(p.read_text().count("this scheduler leads") for p in tmp.glob("*.log"))
    assert leads >= 2  # the standby took over, or the restarted one did


def test_redis_restart_mid_broadcast(prod, redis_server):
    runtime, start, tmp = prod
    _seed(runtime)
    start("a")
    assert enroll_all(runtime.sessions, "broadcast").enrolled == N
    _wait(lambda: _sent(runtime) >= N // 3, 120, "a third of the messages")
    redis_server.restart()  # every queued message is gone (no persistence)
    assert _unfinished(runtime) > 0
    _wait(lambda: _unfinished(runtime) == 0, 180, "every run to finish after redis came back")
    _check_exactly_once(runtime, tmp / "sent")
