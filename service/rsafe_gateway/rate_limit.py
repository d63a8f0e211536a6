"""Per-caller token buckets: in Redis (one bucket across all replicas), in-process as fallback.

Each caller (API key id, or client address when auth is off) gets `burst` tokens, refilled at
`rate` per second; a request takes one. Redis runs the whole update in one Lua script with its
own clock, so replicas agree. When Redis is disabled or failing, each replica keeps local buckets
(the limit then holds per replica) rather than failing or letting everything through.
"""

from __future__ import annotations

import logging
import math
import time

from redis.asyncio import Redis

from .errors import RateLimited
from .metrics import RATE_LIMITED
from .tenants import RateLimit

logger = logging.getLogger("rsafe_gateway.rate_limit")

_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class _LocalBuckets:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, caller: str, rate: float, burst: int) -> float:
        now = time.monotonic()
        tokens, last = self._buckets.get(caller, (float(burst), now))
        tokens = min(burst, tokens + (now - last) * rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / rate
        if len(self._buckets) > 100_000:  # bound memory under a flood of distinct callers
            self._buckets.clear()
        self._buckets[caller] = (tokens, now)
        return wait


class RateLimiter:
    def __init__(self, rate: float, burst: int, redis: Redis | None, prefix: str) -> None:
        self._rate = rate
        self._burst = burst
        self._redis = redis
        self._prefix = f"{prefix}ratelimit:"
        self._local = _LocalBuckets()
        self._script = redis.register_script(_BUCKET_SCRIPT) if redis is not None else None

    async def check(self, caller: str, own: RateLimit | None = None) -> None:
        """Take one token for `caller` (at its key's own rate when it has one), or raise
        RateLimited with the seconds to wait."""
        rate, burst = (own.per_second, own.burst) if own is not None else (self._rate, self._burst)
        if rate <= 0:  # no gateway-wide limit, and this key has none of its own
            return
        wait = await self._take(caller, rate, burst)
        if wait > 0:
            RATE_LIMITED.inc()
            raise RateLimited(
                "rate limit exceeded for this API key", retry_after_seconds=max(1, math.ceil(wait))
            )

    async def _take(self, caller: str, rate: float, burst: int) -> float:
        if self._script is not None:
            try:
                result = await self._script(keys=[self._prefix + caller], args=[rate, burst])
                return float(result)
            except Exception as exc:  # any Redis failure: local buckets
                logger.warning("rate limit falls back to this replica: %s", type(exc).__name__)
        return self._local.take(caller, rate, burst)
