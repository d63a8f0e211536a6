#!/usr/bin/env python
"""The local processes the measurement scripts start and stop: vLLM (tiny checkpoint, `cpu`
serving profile), Redis, the gateway, and a bare FastAPI endpoint as the baseline for cache hits.

Used by `benchmark.py` (and `profile_gateway.py` for the bare app). Run as a script, it serves
the bare app: `gateway_stack.py PORT BODY_FILE`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response  # module level: the bare app's annotations resolve

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "service"))

from rsafe_gateway.serving_recipe import vllm_args  # noqa: E402
from rsafe_gateway.settings import Settings  # noqa: E402

VLLM_PYTHON = Path(os.environ.get("RSAFE_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))
TINY_MODEL_DIR = REPO / ".cache" / "tiny-rsafe"


class ProcessCpu:
    """CPU seconds (user + system) used so far by one process, read from /proc (Linux)."""

    def __init__(self, pid: int) -> None:
        self._stat = Path(f"/proc/{pid}/stat")
        self._ticks = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        fields = self._stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes] | None, timeout: float, what: str) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited early (code {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s ({url})")


def wait_redis(port: int, process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("redis-server exited early")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock,
        ):
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.1)
    raise TimeoutError("redis-server not ready")


class Stack:
    """The processes this run started; `stop()` ends them all (in reverse order)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Any:
        log = (self.log_dir / f"{name}.log").open("wb")
        with log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO
            )
        self.processes.append((name, process))
        return process

    def pid_of(self, name: str) -> int | None:
        return next((process.pid for found, process in self.processes if found == name), None)

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for _name, process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()

    def start_vllm(self, model_dir: Path, model_name: str) -> str:
        if not VLLM_PYTHON.exists():
            raise SystemExit(
                f"{VLLM_PYTHON} is missing: run scripts/setup.sh (or pass --model-url)"
            )
        if model_dir == TINY_MODEL_DIR:
            subprocess.run(
                [str(VLLM_PYTHON), str(REPO / "models" / "tiny_checkpoint.py"), str(model_dir)],
                check=True,
                capture_output=True,
            )
        port = free_port()
        args = vllm_args("cpu")
        if "--served-model-name" in args:
            args[args.index("--served-model-name") + 1] = model_name
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
            "VLLM_NO_USAGE_STATS": "1",
            "VLLM_LOGGING_LEVEL": "WARNING",
        }
        command = [
            str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port), *args,
        ]  # fmt: skip
        process = self.spawn("vllm", command, env)
        url = f"http://127.0.0.1:{port}"
        print(f"starting vLLM ({model_dir.name}) on {url} ...", file=sys.stderr)
        wait_http(f"{url}/health", process, 300, "vLLM")
        return url

    def start_redis(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (or pass --redis-url)")
        port = free_port()
        process = self.spawn(
            "redis",
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        wait_redis(port, process)
        return f"redis://127.0.0.1:{port}/0"

    def start_gateway(self, model_url: str, redis_url: str, settings: Settings, run_id: str) -> str:
        port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO / "service"),
            "RSAFE_HOST": "127.0.0.1",
            "RSAFE_PORT": str(port),
            "RSAFE_WORKERS": "1",
            "RSAFE_MODEL_SERVER_URL": model_url,
            "RSAFE_REDIS_URL": redis_url,
            "RSAFE_MODEL_NAME": settings.model_name,
            "RSAFE_MAX_TOKENS": str(settings.max_tokens),
            "RSAFE_REASONING_MAX_CHARS": str(settings.reasoning_max_chars),
            "RSAFE_CACHE_KEY_PREFIX": f"rsafe-bench-{run_id}:",
        }
        process = self.spawn("gateway", [sys.executable, "-m", "rsafe_gateway"], env)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", process, 60, "gateway")
        return url

    def start_bare(self, body: bytes) -> str:
        port = free_port()
        body_file = self.log_dir / "bare-body.json"
        body_file.write_bytes(body)
        process = self.spawn(
            "bare-fastapi",
            [sys.executable, __file__, str(port), str(body_file)],
        )
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz", process, 30, "bare FastAPI app")
        return url


def bare_app(answer: bytes) -> FastAPI:
    """The baseline: a FastAPI endpoint that parses the JSON body and returns `answer`."""
    app = FastAPI()

    async def moderate(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(answer, media_type="application/json")

    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.add_api_route("/v1/moderate", moderate, methods=["POST"])
    app.add_api_route("/healthz", healthz, methods=["GET"])
    return app


def serve_bare(port: int, body_file: Path) -> None:
    """`bare_app` under the gateway's uvicorn settings (uvloop, httptools, 1 worker, no log)."""
    uvicorn.run(
        bare_app(body_file.read_bytes()),
        host="127.0.0.1",
        port=port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":  # what `Stack.start_bare` runs: PORT BODY_FILE
    serve_bare(int(sys.argv[1]), Path(sys.argv[2]))
