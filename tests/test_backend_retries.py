"""The model-server client retries a dropped connection (and only that), with backoff.

Fault injection: a stand-in server that closes its first connections unanswered; the happy path
of the same client runs against real vLLM in the e2e tests.
"""

import asyncio
import itertools

import pytest

from rsafe_gateway.backend import BackendConfig, ModelBackend
from rsafe_gateway.errors import BackendUnavailable
from standins import dropping_server

BODY = {"messages": [{"role": "user", "content": "hi"}]}


async def complete(url: str, retries: int) -> str:
    backend = ModelBackend(BackendConfig(base_url=url, model="m", connect_retries=retries))
    try:
        return (await backend.complete(BODY)).text
    finally:
        await backend.close()


def test_dropped_connections_are_retried_with_growing_waits() -> None:
    with dropping_server(drops=2) as (url, arrivals):
        assert asyncio.run(complete(url, retries=2)) == "<think>ok</think>\\boxed{safe}"
    assert len(arrivals) == 3
    waits = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert waits[0] >= 0.05 and waits[1] >= 0.1, waits


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_gives_up_after_connect_retries(retries: int) -> None:
    with dropping_server(drops=retries + 1) as (url, arrivals), pytest.raises(BackendUnavailable):
        asyncio.run(complete(url, retries=retries))
    assert len(arrivals) == retries + 1


def test_a_healthy_server_gets_one_connection_per_call() -> None:
    with dropping_server(drops=0) as (url, arrivals):
        assert asyncio.run(complete(url, retries=2)).endswith("\\boxed{safe}")
    assert len(arrivals) == 1
