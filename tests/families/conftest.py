"""Fixtures of the family tests: one REAL vLLM per family and session, on its tiny checkpoint.

`Qwen3ForCausalLM` for qwen3guard, `GptOssForCausalLM` (harmony, `openai_gptoss` reasoning parser)
for gpt-oss-safeguard: the servers are started with the `cpu-<family>` profiles of
models/serving.yaml by the shared `start_vllm`, and only when a test asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from conftest import (
    RedisServer,
    VllmServer,
    ensure_tiny_model,
    free_port,
    start_vllm,
    stop_process,
)

# family -> (tiny checkpoint architecture, served model name = the profile's)
FAMILIES: dict[str, tuple[str, str]] = {
    "qwen3guard": ("qwen3", "qwen3guard"),
    "gpt-oss-safeguard": ("gpt-oss", "gpt-oss-safeguard"),
}


def family_settings(family: str, **overrides: object) -> dict[str, object]:
    """Settings overrides for a gateway in front of `family`'s tiny model."""
    return {"model_family": family, "model_name": FAMILIES[family][1], **overrides}


def _serve(family: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    architecture, _ = FAMILIES[family]
    model_dir = ensure_tiny_model(architecture)
    log_path = tmp_path_factory.mktemp(f"vllm-{family}") / "vllm.log"
    server = start_vllm(model_dir, free_port(), log_path, profile=f"cpu-{family}")
    yield server
    stop_process(server.process, grace=20)


@pytest.fixture(scope="session")
def qwen3guard_vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    yield from _serve("qwen3guard", tmp_path_factory)


@pytest.fixture(scope="session")
def gpt_oss_vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    yield from _serve("gpt-oss-safeguard", tmp_path_factory)


@pytest.fixture
def family_client(
    make_client: Callable[..., TestClient], redis_server: RedisServer
) -> Callable[..., TestClient]:
    """A gateway (TestClient) for a family in front of the given model server and real Redis."""

    def factory(family: str, model_server_url: str, **overrides: object) -> TestClient:
        return make_client(
            **family_settings(
                family, model_server_url=model_server_url, redis_url=redis_server.url, **overrides
            )
        )

    return factory
