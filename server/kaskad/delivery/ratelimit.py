"""Provider rate limits shared by every worker process: ``await acquire(runtime, "sms", 30, 100)``.

A token bucket in its GCRA form: one number per channel, the *theoretical
arrival time* (TAT) at which the bucket is empty again. Taking ``n`` tokens
moves it ``n / rate`` seconds on; the caller sleeps for whatever exceeds one
second's worth of burst. A reservation is made at once (one round trip, first
come first served) and never polled for.

With ``runtime.settings.broker_url`` a ``redis://`` URL the TAT lives in Redis
(key ``kaskad:ratelimit:<channel>``) and is moved by a Lua script on Redis's own
clock, so any number of workers on any number of machines share the limit;
otherwise it lives in this process (the embedded single-process setup).
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref

#: Seconds of tokens that may be taken at once after a quiet spell (capacity = rate × BURST).
BURST = 1.0

RESERVE = """
local rate, n, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + n / rate
redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
local wait = tat - now - burst
if wait < 0 then wait = 0 end
return string.format('%.6f', wait)
"""


async def acquire(runtime, channel_name: str, rate: float, n: int) -> None:
    """Wait until ``n`` messages may go to ``channel_name``'s provider at ``rate`` per second."""
    if n <= 0 or not rate or rate <= 0:
        return
    url = runtime.settings.broker_url or ""
    if url.startswith(("redis://", "rediss://", "unix://")):
        wait = await _reserve_redis(url, channel_name, rate, n)
    else:
        wait = _reserve_local(channel_name, rate, n)
    if wait > 0:
        await asyncio.sleep(wait)


# -- in this process -------------------------------------------------------------

_local: dict[str, float] = {}
_local_lock = threading.Lock()  # worker threads share the dict


def _reserve_local(channel_name: str, rate: float, n: int) -> float:
    with _local_lock:
        now = time.monotonic()
        tat = max(_local.get(channel_name, 0.0), now) + n / rate
        _local[channel_name] = tat
        return max(0.0, tat - now - BURST)


# -- in Redis ----------------------------------------------------------------------

# redis.asyncio clients belong to the event loop that made them: one per loop and URL.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


async def _reserve_redis(url: str, channel_name: str, rate: float, n: int) -> float:
    import redis.asyncio as redis

    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    script = per_loop.get(url)
    if script is None:
        script = per_loop[url] = redis.Redis.from_url(url).register_script(RESERVE)
    wait = await script(keys=[f"kaskad:ratelimit:{channel_name}"], args=[repr(float(rate)), int(n), BURST])
    return float(wait)
