"""Shared fixtures: REAL servers (vLLM on CPU with the tiny checkpoint, Redis), started once.

vLLM runs from its own virtual environment (`.venv-vllm`, made by `scripts/setup.sh`); the
gateway's tests talk to it over HTTP only, as production does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from rsafe_gateway.app import create_app
from rsafe_gateway.serving_recipe import vllm_args
from rsafe_gateway.settings import Settings

REPO = Path(__file__).resolve().parents[1]
VLLM_PYTHON = Path(os.environ.get("RSAFE_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))
TINY_MODEL_DIR = REPO / ".cache" / "tiny-rsafe"
SERVED_MODEL = "rsafe"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll `check` until it is true; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def stop_process(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Stop a server and, when it leads its own process group, every child it started."""
    group = os.getpgid(process.pid) if process.poll() is None else None
    own_group = group is not None and group == process.pid
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)
    if own_group:
        # vLLM's engine and worker processes must not outlive the API server (~2 GB each).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.process)


def start_redis(port: int | None = None) -> RedisServer:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (scripts/setup.sh installs it)")
    port = port or free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(port, process)
    wait_until(server.ping, 15, f"redis-server on port {port}")
    return server


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


@dataclass
class VllmServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def request_count(self) -> float:
        """Completed requests, from vLLM's own Prometheus counter (proves a model call happened)."""
        total = 0.0
        for line in httpx.get(f"{self.url}/metrics", timeout=5).text.splitlines():
            if line.startswith("vllm:request_success_total"):
                total += float(line.rsplit(" ", 1)[1])
        return total


def ensure_tiny_model(architecture: str = "qwen2", model_dir: Path = TINY_MODEL_DIR) -> Path:
    """The tiny random checkpoint of `architecture` (models/tiny_checkpoint.py), built once."""
    if not VLLM_PYTHON.exists():
        pytest.fail(f"{VLLM_PYTHON} is missing: run scripts/setup.sh first")
    script = str(REPO / "models" / "tiny_checkpoint.py")
    subprocess.run(
        [str(VLLM_PYTHON), script, "--architecture", architecture, str(model_dir)],
        check=True,
        capture_output=True,
    )
    return model_dir


def vllm_environment() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "VLLM_LOGGING_LEVEL": "WARNING",
    }


def start_vllm(model_dir: Path, port: int, log_path: Path, profile: str = "cpu") -> VllmServer:
    """vLLM serving `model_dir` with the flags of a models/serving.yaml profile."""
    command = [
        str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
        *vllm_args(profile),
    ]  # fmt: skip
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=vllm_environment(),
            start_new_session=True,  # its own process group: stop_process reaps the children
        )
    server = VllmServer(f"http://127.0.0.1:{port}", process, log_path)

    def healthy() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"vLLM exited early; see {log_path}")
        return http_ok(f"{server.url}/health")

    try:
        wait_until(healthy, 300, "vLLM", interval=0.5)
    except BaseException:
        stop_process(process)
        raise
    return server


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    model_dir = ensure_tiny_model()
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    server = start_vllm(model_dir, free_port(), log_path)
    yield server
    stop_process(server.process, grace=20)


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


@dataclass
class GatewayProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path


def start_gateway(env: dict[str, str], log_path: Path, port: int | None = None) -> GatewayProcess:
    """The gateway as a real uvicorn process (`python -m rsafe_gateway`), ready when it returns."""
    port = port or free_port()
    environment = {
        **os.environ,
        "RSAFE_HOST": "127.0.0.1",
        "RSAFE_PORT": str(port),
        "RSAFE_MODEL_NAME": SERVED_MODEL,
        "RSAFE_MAX_TOKENS": "300",
        "RSAFE_REASONING_MAX_CHARS": "200",
        "RSAFE_CACHE_KEY_PREFIX": f"rsafe-gw-{port}:",
        **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rsafe_gateway"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    gateway = GatewayProcess(f"http://127.0.0.1:{port}", process, log_path)

    def alive() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited early; see {log_path}")
        return http_ok(f"{gateway.url}/healthz")

    try:
        wait_until(alive, 30, "gateway")
    except BaseException:
        stop_process(process)
        raise
    return gateway


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
    stop_process(gateway.process)


def pytest_report_header() -> str:
    return f"python {sys.version.split()[0]}; vLLM python: {VLLM_PYTHON}"
