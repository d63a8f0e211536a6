"""A REAL gateway process (`python -m rsafe_gateway`, uvicorn) for the evaluation runner to call."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def eval_gateway(
    vllm_server: object, redis_server: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The gateway in front of the session's real vLLM and Redis; yields its base URL."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("eval-gateway")
    log_path = folder / "gateway.log"
    env = {
        **os.environ,
        "RSAFE_HOST": "127.0.0.1",
        "RSAFE_PORT": str(port),
        "RSAFE_MODEL_SERVER_URL": vllm_server.url,  # type: ignore[attr-defined]
        "RSAFE_REDIS_URL": redis_server.url,  # type: ignore[attr-defined]
        "RSAFE_MODEL_NAME": "rsafe",
        "RSAFE_MAX_TOKENS": "300",
        "RSAFE_REASONING_MAX_CHARS": "200",
        "RSAFE_CACHE_KEY_PREFIX": f"rsafe-eval-{port}:",
        "RSAFE_LOG_LEVEL": "warning",
    }
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:  # cwd: a folder without a .env file
        process = subprocess.Popen(
            [sys.executable, "-m", "rsafe_gateway"], stdout=log, stderr=subprocess.STDOUT,
            env=env, cwd=folder,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _ready(url):
            if process.poll() is not None:
                pytest.fail(
                    f"gateway exited ({process.returncode}): {log_path.read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"gateway not ready after 60s: {log_path.read_text()[-2000:]}")
            time.sleep(0.2)  # poll interval
        yield url
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def fixtures_dir() -> Path:
    return Path(__file__).parent / "fixtures"
