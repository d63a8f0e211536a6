#!/usr/bin/env python
"""The one way this checkout starts and stops its local processes: Redis, vLLM (flags from the
serving recipe, models/serving.yaml) and the gateway (`python -m rsafe_gateway`).

Every start polls for readiness (never a fixed sleep) and fails with the end of the process's log
when it exits early; every stop terminates, then kills, the process and (for vLLM, which leads
its own process group) every child it started. Used by the test fixtures (tests/ import it as
`devstack`: pytest puts scripts/ on the path, see pyproject.toml), the benchmarks, the profiler
and the checkpoint evaluation.

It lives in scripts/, not in the service's package: it knows the checkout (.venv-vllm, the tiny
checkpoint builder, log folders), which the shipped gateway must not. It imports nothing beyond
the standard library and the serving recipe, so it loads in any of the checkout's environments.

As a script (for shell scripts, so that vLLM's command line is spelled only here):
    .venv/bin/python scripts/devstack.py vllm-command MODEL_DIR PORT [--profile cpu]
prints the command, one argument per line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A script run from this checkout imports this checkout's gateway, not another installed copy
# (an editable install may point at a different worktree).
for _source in (REPO / "service", REPO / "core"):
    if str(_source) not in sys.path:
        sys.path.insert(0, str(_source))

from rsafe_gateway.serving_recipe import vllm_args  # noqa: E402

VLLM_PYTHON = Path(os.environ.get("RSAFE_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))
CACHE_DIR = REPO / ".cache"
SERVED_MODEL = "rsafe"
# What the gateway needs to judge with the tiny plumbing checkpoint (short answers, small budget).
TINY_GATEWAY_ENV = {
    "RSAFE_MODEL_NAME": SERVED_MODEL,
    "RSAFE_MAX_TOKENS": "300",
    "RSAFE_REASONING_MAX_CHARS": "200",
}


class StackError(RuntimeError):
    """A process of the stack could not be started (missing binary, early exit, not ready)."""


# ---------------------------------------------------------------- ports, polling, stopping


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2) -> None:
    """Poll `check` until it is true; raise TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def log_tail(log_path: Path | None, chars: int = 2000) -> str:
    if log_path is None or not log_path.exists():
        return ""
    return log_path.read_text(errors="replace")[-chars:]


def wait_http(
    url: str,
    process: subprocess.Popen[bytes] | None,
    timeout: float,
    what: str,
    log_path: Path | None = None,
    interval: float = 0.2,
) -> None:
    """Poll `url` until it answers 200; fail at once (with the log's end) if `process` exits."""

    def ready() -> bool:
        if process is not None and process.poll() is not None:
            raise StackError(
                f"{what} exited early (code {process.returncode}); see {log_path}\n"
                + log_tail(log_path)
            )
        return http_ok(url)

    wait_until(ready, timeout, f"{what} ({url})", interval)


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


def spawn(
    command: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    own_group: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `command` with stdout and stderr to `log_path` (the child keeps its own descriptor)."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=own_group,  # its own process group: stop_process reaps the children
        )


class ProcessCpu:
    """CPU seconds (user + system) used so far by one process, read from /proc (Linux)."""

    def __init__(self, pid: int) -> None:
        self._stat = Path(f"/proc/{pid}/stat")
        self._ticks = os.sysconf("SC_CLK_TCK")

    def seconds(self) -> float:
        fields = self._stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks


# ---------------------------------------------------------------- Redis


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


def start_redis(port: int | None = None, log_path: Path | None = None) -> RedisServer:
    """A throw-away redis-server (no persistence) on 127.0.0.1, ready when it returns."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise StackError("redis-server is not installed (scripts/setup.sh installs it)")
    port = port or free_port()
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    process = spawn(command, log_path or Path(os.devnull))
    server = RedisServer(port, process)

    def ready() -> bool:
        if process.poll() is not None:
            raise StackError(f"redis-server exited early (code {process.returncode})")
        return server.ping()

    try:
        wait_until(ready, 15, f"redis-server on port {port}", interval=0.1)
    except BaseException:
        stop_process(process)
        raise
    return server


# ---------------------------------------------------------------- vLLM


@dataclass(frozen=True)
class TinyCheckpoint:
    """A tiny random checkpoint that models/tiny_checkpoint.py builds offline (plumbing only)."""

    folder: Path
    builder_args: tuple[str, ...] = ()  # how models/tiny_checkpoint.py is told the architecture


# One entry per architecture the tests serve; another architecture is one more entry.
TINY_CHECKPOINTS = {
    "qwen2": TinyCheckpoint(CACHE_DIR / "tiny-rsafe"),
    # The guard families' architectures (Qwen3Guard-Gen; gpt-oss-safeguard with harmony).
    "qwen3": TinyCheckpoint(CACHE_DIR / "tiny-qwen3guard", ("--architecture", "qwen3")),
    "gpt-oss": TinyCheckpoint(CACHE_DIR / "tiny-gpt-oss-safeguard", ("--architecture", "gpt-oss")),
}
TINY_MODEL_DIR = TINY_CHECKPOINTS["qwen2"].folder


def ensure_tiny_checkpoint(architecture: str = "qwen2") -> Path:
    """Build the tiny checkpoint of `architecture` unless it is there already; its folder."""
    checkpoint = TINY_CHECKPOINTS[architecture]
    if not VLLM_PYTHON.exists():
        raise StackError(f"{VLLM_PYTHON} is missing: run scripts/setup.sh first")
    subprocess.run(
        [
            str(VLLM_PYTHON), str(REPO / "models" / "tiny_checkpoint.py"),
            str(checkpoint.folder), *checkpoint.builder_args,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return checkpoint.folder


def vllm_command(
    model_dir: Path,
    port: int,
    profile: str = "cpu",
    served_model_name: str | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """vLLM's OpenAI server command line: the model, where to listen, the recipe's flags."""
    args = vllm_args(profile)
    if served_model_name is not None and "--served-model-name" in args:
        args[args.index("--served-model-name") + 1] = served_model_name
    return [
        str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
        *args, *extra_args,
    ]  # fmt: skip


def vllm_environment() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        "VLLM_NO_USAGE_STATS": "1",
        "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
    }


@dataclass
class VllmServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def request_count(self) -> float:
        """Completed requests, from vLLM's own Prometheus counter (proves a model call happened)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("vllm:request_success_total")
        )

    def stop(self) -> None:
        stop_process(self.process, grace=20)


def start_vllm(
    model_dir: Path,
    port: int,
    log_path: Path,
    *,
    profile: str = "cpu",
    served_model_name: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 300,
) -> VllmServer:
    """vLLM serving `model_dir` on 127.0.0.1:`port`, healthy when it returns."""
    if not VLLM_PYTHON.exists():
        raise StackError(f"{VLLM_PYTHON} is missing: run scripts/setup.sh first")
    command = vllm_command(model_dir, port, profile, served_model_name, extra_args)
    process = spawn(command, log_path, vllm_environment(), own_group=True)
    server = VllmServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_http(f"{server.url}/health", process, timeout, "vLLM", log_path, interval=0.5)
    except BaseException:
        stop_process(process)
        raise
    return server


# ---------------------------------------------------------------- the gateway


@dataclass
class GatewayProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        stop_process(self.process)


def checkout_pythonpath() -> str:
    """PYTHONPATH for a child that must run this checkout's code (kept: what was already set)."""
    parts = [str(REPO / "core"), str(REPO / "service"), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(part for part in parts if part)


def start_gateway(
    env: Mapping[str, str],
    log_path: Path,
    port: int | None = None,
    *,
    ready_path: str = "/healthz",
    timeout: float = 30,
    cwd: Path | None = None,
    inherit_env: bool = True,
) -> GatewayProcess:
    """The gateway as a real uvicorn process (`python -m rsafe_gateway`), ready when it returns.

    `env` holds its RSAFE_* settings (on top of this process's environment unless `inherit_env`
    is false); the host and port are set here, and a cache key prefix of its own by default.
    `cwd`: where it runs (a folder without a .env file, to read `env` only).
    """
    port = port or free_port()
    environment = {
        **(os.environ if inherit_env else {}),
        "PYTHONPATH": checkout_pythonpath(),
        "RSAFE_HOST": "127.0.0.1",
        "RSAFE_PORT": str(port),
        "RSAFE_CACHE_KEY_PREFIX": f"rsafe-gw-{port}:",
        **env,
    }
    process = spawn([sys.executable, "-m", "rsafe_gateway"], log_path, environment, cwd=cwd)
    gateway = GatewayProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_http(f"{gateway.url}{ready_path}", process, timeout, "gateway", log_path)
    except BaseException:
        stop_process(process)
        raise
    return gateway


# ---------------------------------------------------------------- a run's processes


@dataclass
class Stack:
    """The processes one run started, logging into `log_dir`; `stop()` ends them all."""

    log_dir: Path
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def spawn(
        self, name: str, command: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        process = spawn(command, self.log_dir / f"{name}.log", env, cwd=REPO)
        self.processes.append((name, process))
        return process

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        self.processes.append((name, process))

    def pid_of(self, name: str) -> int | None:
        return next((process.pid for found, process in self.processes if found == name), None)

    def stop(self) -> None:
        """Stop each process (the last started first) with its children: none outlives the run."""
        for _name, process in reversed(self.processes):
            stop_process(process, grace=20)
        self.processes.clear()

    def start_redis(self) -> str:
        server = start_redis(log_path=self.log_dir / "redis.log")
        self.adopt("redis", server.process)
        return server.url

    def start_vllm(self, model_dir: Path, model_name: str = SERVED_MODEL) -> str:
        if model_dir == TINY_MODEL_DIR:
            ensure_tiny_checkpoint()
        port = free_port()
        print(f"starting vLLM ({model_dir.name}) on port {port} ...", file=sys.stderr)
        server = start_vllm(
            model_dir, port, self.log_dir / "vllm.log", served_model_name=model_name
        )
        self.adopt("vllm", server.process)
        return server.url

    def start_gateway(
        self,
        env: Mapping[str, str],
        name: str = "gateway",
        ready_path: str = "/readyz",
        timeout: float = 60,
        inherit_env: bool = True,
    ) -> str:
        gateway = start_gateway(
            env, self.log_dir / f"{name}.log", ready_path=ready_path, timeout=timeout,
            cwd=REPO, inherit_env=inherit_env,
        )  # fmt: skip
        self.adopt(name, gateway.process)
        return gateway.url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("vllm-command", help="print vLLM's command, one arg per line")
    command.add_argument("model_dir", type=Path)
    command.add_argument("port", type=int)
    command.add_argument("--profile", default="cpu")
    options = parser.parse_args(argv)
    sys.stdout.write("\n".join(vllm_command(options.model_dir, options.port, options.profile)))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
