"""A REAL gateway process (`python -m rsafe_gateway`, uvicorn) for the evaluation runner to call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import RedisServer, VllmServer, start_gateway


@pytest.fixture(scope="module")
def eval_gateway(
    vllm_server: VllmServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The gateway in front of the session's real vLLM and Redis; yields its base URL."""
    folder = tmp_path_factory.mktemp("eval-gateway")
    env = {
        "RSAFE_MODEL_SERVER_URL": vllm_server.url,
        "RSAFE_REDIS_URL": redis_server.url,
        "RSAFE_LOG_LEVEL": "warning",
    }
    # cwd: a folder without a .env file
    gateway = start_gateway(
        env, folder / "gateway.log", ready_path="/readyz", timeout=60, cwd=folder
    )
    try:
        yield gateway.url
    finally:
        gateway.stop()


@pytest.fixture
def fixtures_dir() -> Path:
    return Path(__file__).parent / "fixtures"
