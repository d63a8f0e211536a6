"""Fixtures of the playground tests.

- `playground_client`: the app in-process (TestClient), for headers, file serving and the error shape;
- `gateway`: the gateway as a REAL uvicorn subprocess in front of the real vLLM and Redis;
- `browser`: headless Chromium (Debian's chromium + chromedriver, driven by Selenium), started by
  scripts/playground_browser.py (the driver path is given explicitly and SE_OFFLINE is set, so
  selenium-manager never downloads anything). `scripts/install-browser.sh` installs all three;
  a missing piece fails the tests, it never skips them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playground_browser import BrowserMissing, start_chromium

from conftest import GatewayProcess, RedisServer, VllmServer, start_gateway, tiny_settings
from rsafe_gateway.app import create_app

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"


@pytest.fixture
def playground_client() -> Iterator[Callable[..., TestClient]]:
    """Build an in-process client of the gateway with the playground for given settings."""
    clients: list[TestClient] = []

    def factory(**overrides: object) -> TestClient:
        app = create_app(tiny_settings(**overrides))
        # 127.0.0.1: a name the gateway answers to by default (TestClient says "testserver").
        client = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


Gateway = GatewayProcess  # the name the browser tests know it by


@pytest.fixture(scope="module")
def gateway(
    vllm_server: VllmServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """The gateway as a real uvicorn process (what a browser meets in production)."""
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    env = {
        "RSAFE_MODEL_SERVER_URL": vllm_server.url,
        "RSAFE_REDIS_URL": redis_server.url,
        "RSAFE_READ_TIMEOUT_SECONDS": "60",
        "RSAFE_CACHE_KEY_PREFIX": f"rsafe-playground-{uuid.uuid4().hex[:8]}:",
        "RSAFE_PLAYGROUND_ENABLED": "true",
    }
    gateway = start_gateway(env, log_path, ready_path="/readyz", timeout=60)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium with a fresh profile; downloads land in `browser.download_dir`."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    downloads = tmp_path_factory.mktemp("downloads")
    try:
        driver = start_chromium(profile, downloads)
    except BrowserMissing as error:
        pytest.fail(str(error))
    # WebDriver has no such attribute: the tests read the download folder back from it
    driver.download_dir = downloads
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
