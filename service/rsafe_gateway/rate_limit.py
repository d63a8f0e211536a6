"""Per-caller token buckets: in Redis (one bucket across all replicas), in-process as fallback.

Each caller (API key id, or client address when auth is off) gets `burst` tokens, refilled at
`rate` per second. Tokens pay for model calls: a request takes one when it is admitted (before
its body is read), and a batch or /v1/moderations request takes one more per further model call
it needs once its items are known (cache hits need none), before any call is made. A request the
bucket cannot pay for is refused whole, and takes nothing. Redis runs the whole update in one Lua
script with its own clock, so replicas agree. When Redis is disabled or failing, each replica
keeps local buckets (the limit then holds per replica) rather than failing or letting everything
through.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from .errors import RateLimited
from .metrics import RATE_LIMITED
from .tenants import RateLimit

logger = logging.getLogger("rsafe_gateway.rate_limit")

# Pays for the model calls an admitted request needs in all (`RateLimiter.take_more` for one
# caller), or raises RateLimited.
Pay = Callable[[int], Awaitable[None]]

_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class _LocalBuckets:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, caller: str, cost: int, rate: float, burst: int) -> float:
        now = time.monotonic()
        tokens, last = self._buckets.get(caller, (float(burst), now))
        tokens = min(burst, tokens + (now - last) * rate)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / rate
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

    def _limit(self, own: RateLimit | None) -> tuple[float, int]:
        # A key's own limit (tenants.py) replaces the gateway-wide one.
        return (own.per_second, own.burst) if own is not None else (self._rate, self._burst)

    async def check(self, caller: str, own: RateLimit | None = None) -> None:
        """Admission: take one token for `caller`, or raise RateLimited with the seconds to wait."""
        await self.take(caller, 1, own)

    async def take_more(self, caller: str, model_calls: int, own: RateLimit | None = None) -> None:
        """An admitted request needs `model_calls` in all: take the ones beyond the first."""
        _, burst = self._limit(own)
        if model_calls > burst and self._limit(own)[0] > 0:
            RATE_LIMITED.inc()
            raise RateLimited(
                f"this request needs {model_calls} model calls, more than this API key's rate "
                f"limit allows at once ({burst}); send fewer items per request",
                retry_after_seconds=None,
            )
        if model_calls > 1:
            await self.take(caller, model_calls - 1, own)

    async def take(self, caller: str, cost: int, own: RateLimit | None = None) -> None:
        rate, burst = self._limit(own)
        if rate <= 0:  # no gateway-wide limit, and this key has none of its own
            return
        wait = await self._take(caller, cost, rate, burst)
        if wait > 0:
            RATE_LIMITED.inc()
            raise RateLimited(
                "rate limit exceeded for this API key", retry_after_seconds=max(1, math.ceil(wait))
            )

    async def _take(self, caller: str, cost: int, rate: float, burst: int) -> float:
        if self._script is not None:
            try:
                result = await self._script(keys=[self._prefix + caller], args=[rate, burst, cost])
                return float(result)
            except Exception as exc:  # any Redis failure: local buckets
                logger.warning("rate limit falls back to this replica: %s", type(exc).__name__)
        return self._local.take(caller, cost, rate, burst)
