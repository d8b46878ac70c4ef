"""Rate limits for paid embedding APIs, shared by every worker on every host.

A per-process limit would multiply by the number of workers, so the limit lives in Redis:
one key per (embedder, unit) holds a "theoretical arrival time" (GCRA, the leaky bucket as
a meter). Each call reserves its cost atomically in a Lua script using Redis's own clock
and is told how long to wait before sending; nothing is ever refused, callers queue up in
order. A burst of one second's worth of the limit passes without waiting.

Redis is untrusted and may be wiped: the worst it can do here is delay calls (a huge
stored time) or let a burst through after a wipe, which the API then answers with 429,
and that is retried honouring ``Retry-After``. Waits are capped at a minute per call.
"""

from __future__ import annotations

import threading
import time
from typing import Any

MAX_WAIT_S = 60.0

_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local interval = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
if tat > now + 3600 then tat = now end
local new_tat = tat + cost * interval
local wait = new_tat - now - burst
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now + 60) * 1000))
return tostring(wait)
"""


class RedisRateLimiter:
    """``per_minute`` units per minute across every process sharing ``key``."""

    def __init__(self, redis_conn: Any, key: str, per_minute: float) -> None:
        self._redis = redis_conn
        self._key = key
        self._interval = 60.0 / per_minute
        self._burst = max(1.0, per_minute / 60.0) * self._interval
        self._script = redis_conn.register_script(_RESERVE)

    def reserve(self, cost: float) -> float:
        """Reserve ``cost`` units; returns the seconds to wait before using them."""
        wait = float(self._script(keys=[self._key], args=[self._interval, cost, self._burst]))
        return min(max(wait, 0.0), MAX_WAIT_S)


class LocalRateLimiter:
    """The same meter in this process only (commands that embed outside the workers)."""

    def __init__(self, per_minute: float) -> None:
        self._interval = 60.0 / per_minute
        self._burst = max(1.0, per_minute / 60.0) * self._interval
        self._tat = 0.0
        self._lock = threading.Lock()

    def reserve(self, cost: float) -> float:
        with self._lock:
            now = time.monotonic()
            self._tat = max(self._tat, now) + cost * self._interval
            return min(max(self._tat - now - self._burst, 0.0), MAX_WAIT_S)
