"""Shared fixtures: REAL servers (vLLM on CPU with the tiny checkpoint, Redis), started once.

vLLM runs from its own virtual environment (`.venv-vllm`, made by `scripts/setup.sh`); the
gateway's tests talk to it over HTTP only, as production does. Every process is started and
stopped by `devstack` (scripts/devstack.py), the one place that knows how; its names are
re-exported here for the tests that import them from `conftest`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from devstack import (
    REPO,
    SERVED_MODEL,
    TINY_GATEWAY_ENV,
    TINY_MODEL_DIR,
    VLLM_PYTHON,
    GatewayProcess,
    RedisServer,
    VllmServer,
    ensure_tiny_checkpoint,
    free_port,
    http_ok,
    start_redis,
    start_vllm,
    stop_process,
    wait_until,
)
from devstack import start_gateway as start_gateway_process
from fastapi.testclient import TestClient

from rsafe_gateway.app import create_app
from rsafe_gateway.settings import Settings

__all__ = [
    "REPO",
    "SERVED_MODEL",
    "TINY_MODEL_DIR",
    "VLLM_PYTHON",
    "GatewayProcess",
    "RedisServer",
    "VllmServer",
    "ensure_tiny_model",
    "free_port",
    "http_ok",
    "start_gateway",
    "start_redis",
    "start_vllm",
    "stop_process",
    "tiny_settings",
    "wait_until",
]


def ensure_tiny_model(architecture: str = "qwen2") -> Path:
    """The tiny random checkpoint of `architecture` (built offline on first use)."""
    return ensure_tiny_checkpoint(architecture)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis server of the test's own, free to be stopped."""
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    model_dir = ensure_tiny_model()
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    server = start_vllm(model_dir, free_port(), log_path)
    yield server
    server.stop()


def tiny_settings(**overrides: object) -> Settings:
    """Settings sized for the tiny model; tests override the URLs they need."""
    values: dict[str, object] = {
        "model_name": SERVED_MODEL,
        "max_tokens": 300,
        "reasoning_max_chars": 200,
        "redis_url": None,
        "read_timeout_seconds": 30.0,
        "connect_retries": 1,
        "cache_key_prefix": f"rsafe-test-{os.getpid()}:",
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_client() -> Iterator[Callable[..., TestClient]]:
    """Build a TestClient (lifespan running) for given settings; all are closed afterwards."""
    clients: list[TestClient] = []

    def factory(**overrides: object) -> TestClient:
        # 127.0.0.1: a name the gateway answers to by default (TestClient says "testserver").
        client = TestClient(
            create_app(tiny_settings(**overrides)),
            base_url="http://127.0.0.1",
            raise_server_exceptions=False,
        )
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def e2e_client(
    make_client: Callable[..., TestClient], vllm_server: VllmServer, redis_server: RedisServer
) -> TestClient:
    """The gateway in front of the real vLLM and the real Redis."""
    return make_client(model_server_url=vllm_server.url, redis_url=redis_server.url)


def start_gateway(
    env: dict[str, str],
    log_path: Path,
    port: int | None = None,
    *,
    ready_path: str = "/healthz",
    timeout: float = 30,
    cwd: Path | None = None,
) -> GatewayProcess:
    """The gateway as a real uvicorn process sized for the tiny model, ready when it returns."""
    return start_gateway_process(
        {**TINY_GATEWAY_ENV, **env}, log_path, port, ready_path=ready_path, timeout=timeout, cwd=cwd
    )


@pytest.fixture(scope="session")
def gateway_process(
    vllm_server: VllmServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    """A real gateway process in front of the real vLLM and Redis, shared by the session."""
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    gateway = start_gateway(
        {"RSAFE_MODEL_SERVER_URL": vllm_server.url, "RSAFE_REDIS_URL": redis_server.url}, log_path
    )
    yield gateway
    gateway.stop()


def pytest_report_header() -> str:
    return f"python {sys.version.split()[0]}; vLLM python: {VLLM_PYTHON}"
