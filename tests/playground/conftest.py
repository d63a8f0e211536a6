"""Fixtures of the playground tests.

- `playground_client`: the app in-process (TestClient), for headers, file serving and the error shape;
- `gateway`: the gateway as a REAL uvicorn subprocess in front of the real vLLM and Redis;
- `browser`: headless Chromium (Debian's chromium + chromedriver, driven by Selenium). The driver path
  is given explicitly and SE_OFFLINE is set, so selenium-manager never downloads anything.
  `scripts/install-browser.sh` installs all three; a missing piece fails the tests, it never skips them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import RedisServer, VllmServer, free_port, stop_process, tiny_settings, wait_until
from rsafe_gateway.app import create_app

from .launch_gateway import with_playground

os.environ["SE_OFFLINE"] = "true"  # before selenium is imported: never run selenium-manager online

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).resolve().parent / "launch_gateway.py"
ARTIFACTS = REPO / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "run scripts/install-browser.sh (chromium, chromium-driver, selenium)"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
]


@pytest.fixture
def playground_client() -> Iterator[Callable[..., TestClient]]:
    """Build an in-process client of the gateway with the playground for given settings."""
    clients: list[TestClient] = []

    def factory(**overrides: object) -> TestClient:
        app = with_playground(create_app(tiny_settings(**overrides)))
        # 127.0.0.1: a name the gateway answers to by default (TestClient says "testserver").
        client = TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.__exit__(None, None, None)


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


@pytest.fixture(scope="module")
def gateway(
    vllm_server: VllmServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """The gateway as a real uvicorn process (what a browser meets in production)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    env = {
        **os.environ,
        "RSAFE_MODEL_SERVER_URL": vllm_server.url,
        "RSAFE_REDIS_URL": redis_server.url,
        "RSAFE_MODEL_NAME": "rsafe",
        "RSAFE_MAX_TOKENS": "300",
        "RSAFE_REASONING_MAX_CHARS": "200",
        "RSAFE_READ_TIMEOUT_SECONDS": "60",
        "RSAFE_HOST": "127.0.0.1",
        "RSAFE_PORT": str(port),
        "RSAFE_CACHE_KEY_PREFIX": f"rsafe-playground-{uuid.uuid4().hex[:8]}:",
        "RSAFE_PLAYGROUND_ENABLED": "true",
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(LAUNCHER)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited early:\n{log_path.read_text()}")
        try:
            return httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 60, "gateway (uvicorn)", interval=0.2)
        yield Gateway(url, process, log_path)
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium with a fresh profile; downloads land in `browser.download_dir`."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists() and shutil.which(str(CHROMEDRIVER))):
        pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} is missing: {INSTALL_HINT}")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"selenium is not installed: {INSTALL_HINT}")

    profile = tmp_path_factory.mktemp("chromium-profile")
    downloads = tmp_path_factory.mktemp("downloads")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(str(CHROMEDRIVER), log_output=str(profile.parent / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    # WebDriver has no such attribute: the tests read the download folder back from it
    driver.download_dir = downloads  # type: ignore[attr-defined]
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
