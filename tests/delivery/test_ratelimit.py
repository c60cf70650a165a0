"""Provider rate limits: two worker processes sharing one limit through a real redis-server,
and the in-process bucket. The checks are upper bounds on what was let through by each
moment (a slow machine only makes them easier to meet), never on speed."""

import asyncio
import json
import subprocess
import sys
import time
import uuid
from types import SimpleNamespace

import pytest

from kaskad.delivery import ratelimit

WORKER = """
import asyncio, json, sys, time
from types import SimpleNamespace
from kaskad.delivery.ratelimit import acquire

url, channel, rate, start = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
runtime = SimpleNamespace(settings=SimpleNamespace(broker_url=url))

async def main():
    grants = []
    time.sleep(max(0.0, start - time.time()))
    for n in [5] * 8:
        await acquire(runtime, channel, rate, n)
        grants.append([time.time(), n])
    print(json.dumps(grants))

asyncio.run(main())
"""


def assert_within_limit(grants, t0, rate):
    """By each grant's moment, at most rate × (elapsed + the one-second burst) tokens went out."""
    taken = 0
    for at, n in sorted(grants):
        taken += n
        assert taken <= rate * (at - t0 + ratelimit.BURST + 0.01), (taken, at - t0)


@pytest.mark.redis
def test_two_processes_share_one_limit_through_redis(redis_server):
    channel, rate = f"sms-{uuid.uuid4().hex[:8]}", 40.0
    t0 = time.time()
    start = t0 + 2.0
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, redis_server.url, channel, str(rate), str(start)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    grants = [g for out in outputs for g in json.loads(out)]
    assert len(grants) == 16 and sum(n for _, n in grants) == 80
    # 80 tokens at 40/s: were each process limited on its own, both would take their
    # 40-token burst at once and this fails.
    assert_within_limit(grants, start, rate)  # the key is new: nothing was taken before start


@pytest.mark.redis
def test_one_key_per_channel_that_expires_when_the_bucket_is_full_again(redis_server):
    import redis

    runtime = SimpleNamespace(settings=SimpleNamespace(broker_url=redis_server.url))
    tag = uuid.uuid4().hex[:8]
    r = redis.Redis.from_url(redis_server.url)
    r.ping()  # connect before the clock matters: the keys live about two seconds

    async def run():
        await ratelimit.acquire(runtime, f"a-{tag}", 10.0, 10)
        ttl_a = r.pttl(f"kaskad:ratelimit:a-{tag}")
        await ratelimit.acquire(runtime, f"b-{tag}", 10.0, 10)
        return ttl_a, r.pttl(f"kaskad:ratelimit:b-{tag}")

    ttl_a, ttl_b = asyncio.run(run())
    # One key per channel, each expiring once its bucket would be full again (1 s of tokens + 1 s).
    assert 0 < ttl_a <= 2000 and 0 < ttl_b <= 2000


def test_in_process_bucket_holds_the_limit_even_for_batches_larger_than_the_burst():
    runtime = SimpleNamespace(settings=SimpleNamespace(broker_url=None))
    channel, rate = f"local-{uuid.uuid4().hex[:8]}", 100.0

    async def run():
        grants = []
        for n in (60, 60, 150, 10):
            await ratelimit.acquire(runtime, channel, rate, n)
            grants.append((time.time(), n))
        return grants

    t0 = time.time()
    assert_within_limit(asyncio.run(run()), t0, rate)


def test_no_rate_means_no_wait():
    runtime = SimpleNamespace(settings=SimpleNamespace(broker_url="redis://127.0.0.1:1/0"))  # never contacted
    asyncio.run(ratelimit.acquire(runtime, "email", None, 1000))
    asyncio.run(ratelimit.acquire(runtime, "email", 10.0, 0))
