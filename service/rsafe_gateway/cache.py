"""Decision cache: a small in-process LRU in front of Redis. An accelerator, never a dependency.

The key is a SHA-256 over everything that decides the answer: model, prompt-template version,
policy hash, target, the judged conversation, the categories asked for and the decoding
parameters. So a new template, model or policy text can never be answered from an old entry.
The value is the decision only (verdict, categories, reasoning, usage), never the moderated text.

Two levels: keys are content hashes and a key's decision never changes, so each replica can keep
the hottest decisions in memory (bounded LRU with a short TTL) and answer hits without a Redis
round trip; Redis shares decisions between replicas and across restarts.

Any Redis failure is logged, counted and treated as a miss (reads) or skipped (writes): requests
never fail because of the cache.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import orjson
from cachetools import TTLCache
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .metrics import CACHE_ERRORS, CACHE_LOCAL_HITS, CACHE_OVERSIZED

logger = logging.getLogger("rsafe_gateway.cache")

# Bump when the stored value's shape changes.
VALUE_VERSION = 1


def cache_key(prefix: str, material: object) -> str:
    """`prefix` + a SHA-256 of `material` (JSON; dict keys sorted, dataclasses as objects)."""
    digest = hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{prefix}v{VALUE_VERSION}:{digest}"


class DecisionCache:
    def __init__(
        self,
        redis: Redis | None,
        *,
        ttl_seconds: int,
        local_items: int = 0,
        local_ttl_seconds: float = 60.0,
        max_value_bytes: int = 65_536,
    ) -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._max_value_bytes = max_value_bytes
        self._local: TTLCache[str, dict[str, Any]] | None = (
            TTLCache(maxsize=local_items, ttl=min(local_ttl_seconds, ttl_seconds))
            if local_items > 0
            else None
        )

    @property
    def enabled(self) -> bool:
        return self._redis is not None

    async def get(self, key: str) -> dict[str, Any] | None:
        if self._local is not None:
            value = self._local.get(key)
            if value is not None:
                CACHE_LOCAL_HITS.inc()
                return value
        if self._redis is None:
            return None
        try:
            raw = await self._redis.get(key)
        except Exception as exc:  # whatever the client raises, a miss
            CACHE_ERRORS.labels("get").inc()
            logger.warning("cache read skipped: %s", type(exc).__name__)
            return None
        if raw is None:
            return None
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(value, dict) or value.get("v") != VALUE_VERSION:
            return None
        if self._local is not None:
            self._local[key] = value
        return value

    async def set(self, key: str, value: dict[str, Any]) -> None:
        stored = {**value, "v": VALUE_VERSION}
        encoded = orjson.dumps(stored)
        if len(encoded) > self._max_value_bytes:
            CACHE_OVERSIZED.inc()  # e.g. a very long reasoning: answered, just not cached
            return
        if self._local is not None:
            self._local[key] = stored
        if self._redis is None:
            return
        try:
            await self._redis.set(key, encoded, ex=self._ttl)
        except Exception as exc:  # whatever the client raises, skipped
            CACHE_ERRORS.labels("set").inc()
            logger.warning("cache write skipped: %s", type(exc).__name__)

    async def ping(self) -> bool:
        if self._redis is None:
            return True
        try:
            return bool(await self._redis.ping())
        except Exception:  # any failure means "not reachable"
            return False

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()


def connect_redis(url: str | None, *, timeout_seconds: float) -> Redis | None:
    """A lazily connecting client (no I/O here), or None when the cache is disabled."""
    if not url:
        return None
    return Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        # One immediate retry heals a stale pooled connection; more would make a dead Redis
        # cost every request seconds of backoff (redis-py's default).
        retry=Retry(NoBackoff(), retries=1),
    )
