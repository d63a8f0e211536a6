"""The decision cache against a REAL Redis server."""

import asyncio

from conftest import RedisServer, free_port
from rsafe_gateway.cache import VALUE_VERSION, DecisionCache, cache_key, connect_redis


def test_cache_key_changes_with_every_ingredient() -> None:
    base = {"model": "m", "template": "t", "policy": "p", "target": "prompt", "messages": []}
    keys = {cache_key("x:", base)}
    for field in base:
        keys.add(cache_key("x:", {**base, field: "changed"}))
    assert len(keys) == len(base) + 1
    assert cache_key("x:", base) == cache_key("x:", dict(reversed(list(base.items()))))


def test_round_trip_and_ttl(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        redis = connect_redis(redis_server.url, timeout_seconds=1)
        cache = DecisionCache(redis, ttl_seconds=60)
        key = cache_key("test-cache:", {"n": 1})
        await cache.set(key, {"verdict": "safe"})
        assert await cache.get(key) == {"verdict": "safe", "v": VALUE_VERSION}
        assert redis is not None
        assert 0 < await redis.ttl(key) <= 60
        await redis.set(key, b'{"verdict": "safe", "v": 0}')
        assert await cache.get(key) is None  # a value of another version is never served
        await cache.close()

    asyncio.run(scenario())


def test_dead_redis_is_a_miss_not_an_error() -> None:
    async def scenario() -> None:
        cache = DecisionCache(
            connect_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.2),
            ttl_seconds=60,
        )
        assert await cache.get("k") is None
        await cache.set("k", {"verdict": "safe"})
        assert await cache.ping() is False
        await cache.close()

    asyncio.run(scenario())


def test_disabled_cache() -> None:
    async def scenario() -> None:
        cache = DecisionCache(None, ttl_seconds=60)
        assert not cache.enabled
        assert await cache.get("k") is None
        assert await cache.ping() is True

    asyncio.run(scenario())


def test_values_over_the_size_limit_are_not_cached(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        cache = DecisionCache(
            connect_redis(redis_server.url, timeout_seconds=1),
            ttl_seconds=60,
            local_items=10,
            max_value_bytes=300,
        )
        small = cache_key("test-size:", {"n": "small"})
        large = cache_key("test-size:", {"n": "large"})
        await cache.set(small, {"reasoning": "short"})
        await cache.set(large, {"reasoning": "x" * 400})
        assert await cache.get(small) == {"reasoning": "short", "v": VALUE_VERSION}
        assert await cache.get(large) is None
        await cache.close()

    asyncio.run(scenario())
