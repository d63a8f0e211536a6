#!/usr/bin/env python
"""Gateway benchmark against the real local stack: miss overhead, cache hits, single-flight.

    .venv/bin/python scripts/benchmark.py                    # full run; starts its own stack
    .venv/bin/python scripts/benchmark.py --quick            # a few seconds of measurement (CI)
    .venv/bin/python scripts/benchmark.py --gateway-url http://127.0.0.1:8080 \\
        --model-url http://127.0.0.1:8000                    # measure a running stack

What it measures, in ONE run (load generated in-process with aiohttp on uvloop, loopback only):

(a) cache misses: the gateway (POST /v1/moderate, a run-unique prompt, so a real miss: Redis GET,
    model call, Redis SET) against the model server directly (POST /v1/chat/completions with the
    exact body the gateway sends, built with the gateway's own `render_messages`/`answer_regex`
    and its decoding settings), at 1, 16 and 64 concurrent clients, in alternating rounds (which
    path goes first alternates). The two paths get DIFFERENT texts of the same shape (`[tag-d-7]
    topic` vs `[tag-g-7] topic`): with one shared text, vLLM's prefix cache let whichever path
    sent it second skip its prefill (measured: ~440 ms vs ~315 ms p50 at 16 clients, by order
    alone). Both paths still share the cached policy prefix, as production requests do.
    Overhead = gateway percentile minus direct percentile (p50, p99); the paired difference
    (i-th gateway text vs i-th direct text) is reported too, and a 95 % bootstrap interval of
    the p50 and p99 overheads (how much of the number is chance). Throughput ratio = gateway
    req/s / direct req/s. `prompt_tokens` of each pair are compared: equal counts show the
    bodies match.
(b) cache hits: the gateway answering from its cache (in-process LRU, then Redis) against a bare
    FastAPI endpoint (parses the JSON body, returns a recorded gateway answer of the same size)
    run with the same uvicorn settings (uvloop, httptools, 1 worker, no access log), at 1 and 64
    clients, alternating rounds.
For the servers it started itself, it also reads their CPU time per request from /proc: the
gateway's own cost, free of the noise in latencies (and, on a 2-core machine, the CPU the model
server does not get while the gateway works).
(c) single-flight: a burst of N identical concurrent cache-miss requests; model calls are counted
    from vLLM's `vllm:request_success_total` (/metrics). The same burst with `cache: false` (no
    single-flight) is the control.

Without URLs it starts (and always stops) its own stack: vLLM from .venv-vllm serving the tiny
checkpoint (.cache/tiny-rsafe, made by models/tiny_checkpoint.py) with the `cpu` serving profile,
Redis on a free port, the gateway (`python -m rsafe_gateway`); the bare FastAPI app is always its
own subprocess. With --gateway-url, --model-url is required and --max-tokens/--reasoning-max-chars
must match that gateway's settings (the prompt-token check in the output tells).

Targets are reported, not asserted: miss overhead p50 <= 2 ms and p99 <= 10 ms at 1 and 16
clients, miss throughput ratio at 64 >= 0.95, hit p50 <= 1.5 ms at 1 client, hit req/s at 64 >=
0.6x bare FastAPI. All processes share one machine: the numbers are ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop
from devstack import REPO, TINY_MODEL_DIR, ProcessCpu, Stack  # first: this checkout on the path
from gateway_bench.bare_app import start_bare
from gateway_bench.hit import hit_experiment
from gateway_bench.miss import miss_experiment
from gateway_bench.report import checks, markdown
from gateway_bench.shared import (
    CPU_METERS,
    FULL,
    JSON,
    QUICK,
    TARGETS,
    TOPICS,
    Bodies,
    Plan,
    session_for,
)
from gateway_bench.single_flight import single_flight_experiment

from rsafe_gateway.settings import Settings


async def measure(
    gateway_url: str, model_url: str, bare_url: str, bodies: Bodies, plan: Plan, run_id: str
) -> dict[str, Any]:
    print("(a) cache misses ...", file=sys.stderr)
    miss = await miss_experiment(gateway_url, model_url, bodies, plan, run_id)
    print("(b) cache hits ...", file=sys.stderr)
    hit = await hit_experiment(gateway_url, bare_url, bodies, plan, run_id)
    print("(c) single-flight ...", file=sys.stderr)
    single_flight = await single_flight_experiment(gateway_url, model_url, bodies, plan, run_id)
    return {"miss": {"levels": miss}, "hit": {"levels": hit}, "single_flight": single_flight}


async def record_hit_body(gateway_url: str, bodies: Bodies, run_id: str) -> bytes:
    """A real gateway answer (a hit), to be the bare endpoint's answer of the same size."""
    payload = bodies.gateway(f"[{run_id}-size] {TOPICS[0]}")
    async with session_for(1) as session:
        for _ in range(2):
            async with session.post(
                f"{gateway_url}/v1/moderate", data=payload, headers=JSON
            ) as response:
                body = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"gateway answered {response.status}: {body[:300]!r}")
    return body


def start_gateway(
    stack: Stack, model_url: str, redis_url: str, settings: Settings, run_id: str
) -> str:
    """The gateway under test, one worker, with the benchmark's decoding settings."""
    return stack.start_gateway(
        {
            "RSAFE_WORKERS": "1",
            "RSAFE_MODEL_SERVER_URL": model_url,
            "RSAFE_REDIS_URL": redis_url,
            "RSAFE_MODEL_NAME": settings.model_name,
            "RSAFE_MAX_TOKENS": str(settings.max_tokens),
            "RSAFE_REASONING_MAX_CHARS": str(settings.reasoning_max_chars),
            "RSAFE_CACHE_KEY_PREFIX": f"rsafe-bench-{run_id}:",
        }
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateway-url", help="a running gateway (then --model-url is required)")
    parser.add_argument("--model-url", help="the model server (vLLM) the gateway uses")
    parser.add_argument("--redis-url", help="Redis for a gateway this script starts")
    parser.add_argument(
        "--model-dir", type=Path, default=TINY_MODEL_DIR, help="checkpoint to serve"
    )
    parser.add_argument("--model-name", default="rsafe", help="served model name")
    parser.add_argument("--policy-id", default="rsafe-default")
    parser.add_argument(
        "--max-tokens", type=int, default=300, help="the gateway's RSAFE_MAX_TOKENS"
    )
    parser.add_argument(
        "--reasoning-max-chars", type=int, default=200, help="its RSAFE_REASONING_MAX_CHARS"
    )
    parser.add_argument("--quick", action="store_true", help="small counts: seconds, for CI")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "benchmark.json")
    parser.add_argument("--log-dir", type=Path, help="logs of started processes (default: tmp)")
    options = parser.parse_args(argv)
    if options.gateway_url and not options.model_url:
        parser.error("--gateway-url needs --model-url (the direct path and the vLLM counter)")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    plan = QUICK if options.quick else FULL
    run_id = uuid.uuid4().hex[:10]
    settings = Settings(
        _env_file=None,
        model_name=options.model_name,
        max_tokens=options.max_tokens,
        reasoning_max_chars=options.reasoning_max_chars,
    )
    bodies = Bodies.create(settings, options.policy_id)
    log_dir = options.log_dir or Path(tempfile.mkdtemp(prefix="rsafe-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack(log_dir)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    wall = time.perf_counter()
    try:
        model_url = (options.model_url or "").rstrip("/") or stack.start_vllm(
            options.model_dir, options.model_name
        )
        gateway_url = (options.gateway_url or "").rstrip("/")
        if not gateway_url:
            redis_url = options.redis_url or stack.start_redis()
            gateway_url = start_gateway(stack, model_url, redis_url, settings, run_id)
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        with runner:
            hit_body = runner.run(record_hit_body(gateway_url, bodies, run_id))
            bare_url = start_bare(stack, hit_body)
            for name, process_name in (("gateway", "gateway"), ("bare_fastapi", "bare-fastapi")):
                pid = stack.pid_of(process_name)
                if pid is not None and Path(f"/proc/{pid}/stat").exists():
                    CPU_METERS[name] = ProcessCpu(pid)
            results = runner.run(measure(gateway_url, model_url, bare_url, bodies, plan, run_id))
    finally:
        stack.stop()

    report: dict[str, Any] = {
        "meta": {
            "mode": "quick" if options.quick else "full",
            "started_at": started_at,
            "duration_s": round(time.perf_counter() - wall, 1),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "gateway_url": gateway_url,
            "model_url": model_url,
            "started_stack": not options.gateway_url,
            "policy_id": options.policy_id,
            "decoding": {
                "temperature": settings.temperature,
                "top_p": settings.top_p,
                "max_tokens": settings.max_tokens,
                "reasoning_max_chars": settings.reasoning_max_chars,
                "structured_outputs": settings.structured_outputs,
            },
            "load_generator": f"aiohttp {aiohttp.__version__} on uvloop, in-process, loopback",
            "log_dir": str(log_dir),
        },
        "targets": TARGETS,
        **results,
    }
    report["checks"] = checks(report)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    print(markdown(report))
    print(f"\nwritten to {options.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
