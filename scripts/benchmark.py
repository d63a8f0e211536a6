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
import math
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop
from gateway_stack import REPO, TINY_MODEL_DIR, ProcessCpu, Stack  # puts service/ on the path
from rsafe_core.prompt import answer_regex, render_messages
from rsafe_core.turns import Role, Target, Turn

from rsafe_gateway.policy_store import SHIPPED_POLICY_DIR, PolicyStore
from rsafe_gateway.settings import Settings

JSON = {"Content-Type": "application/json"}
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120)

TARGETS = {
    "miss_overhead_p50_ms": 2.0,
    "miss_overhead_p99_ms": 10.0,
    "miss_throughput_ratio_at_64": 0.95,
    "hit_p50_ms_at_1": 1.5,
    "hit_rps_ratio_at_64": 0.6,
}

TOPICS = [
    "How do I bake sourdough bread at home?",
    "What is the capital of Australia, and why was it chosen?",
    "Write a short poem about the sea in autumn.",
    "How can I pick a lock if I am locked out of my own house?",
    "Explain how vaccines train the immune system.",
    "Give me three tips to improve my sleep.",
    "What household chemicals should never be mixed?",
    "Summarise the plot of Hamlet in two sentences.",
]


@dataclass(frozen=True)
class Plan:
    """Request counts: (concurrency, rounds, requests per path per round)."""

    miss: list[tuple[int, int, int]]
    hit: list[tuple[int, int, int]]
    hit_prompts: int
    burst: int
    warmup: int


FULL = Plan(
    miss=[(1, 10, 10), (16, 6, 64), (64, 6, 128)],
    hit=[(1, 4, 500), (64, 4, 2000)],
    hit_prompts=64,
    burst=64,
    warmup=8,
)
QUICK = Plan(
    miss=[(1, 2, 5), (16, 2, 16), (64, 2, 64)],
    hit=[(1, 2, 100), (64, 2, 320)],
    hit_prompts=16,
    burst=16,
    warmup=2,
)


# ---------------------------------------------------------------- statistics


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def difference_ci(
    baseline: list[float], other: list[float], q: float, resamples: int = 1000
) -> tuple[float, float]:
    """95 % bootstrap interval of percentile_q(other) - percentile_q(baseline).

    How far the measured overhead could move by chance alone: at 16 concurrent misses the p50 of
    one path moves by tens of ms from round to round (vLLM's batching), so a point estimate
    against a 2 ms target says little without it.
    """
    base = [v for v in baseline if not math.isnan(v)]
    mine = [v for v in other if not math.isnan(v)]
    if not base or not mine:
        return math.nan, math.nan
    rng = random.Random(7)  # a fixed seed: the same latencies give the same interval
    differences = sorted(
        percentile(rng.choices(mine, k=len(mine)), q)
        - percentile(rng.choices(base, k=len(base)), q)
        for _ in range(resamples)
    )
    return round(percentile(differences, 2.5), 3), round(percentile(differences, 97.5), 3)


@dataclass
class Sample:
    """Latencies (ms; NaN for a failed request), wall time and, when the server is ours, its CPU
    time, of one path over all its rounds."""

    latencies: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    errors: int = 0
    bodies: list[bytes] = field(default_factory=list)
    server_cpu_s: float | None = None

    def add(self, other: Sample) -> None:
        self.latencies.extend(other.latencies)
        self.wall_s += other.wall_s
        self.errors += other.errors
        self.bodies.extend(other.bodies)
        if other.server_cpu_s is not None:
            self.server_cpu_s = (self.server_cpu_s or 0.0) + other.server_cpu_s

    def summary(self) -> dict[str, Any]:
        lat = [v for v in self.latencies if not math.isnan(v)]
        return {
            "requests": len(self.latencies),
            "errors": self.errors,
            "p50_ms": round(percentile(lat, 50), 3),
            "p90_ms": round(percentile(lat, 90), 3),
            "p99_ms": round(percentile(lat, 99), 3),
            "mean_ms": round(sum(lat) / len(lat), 3) if lat else math.nan,
            "rps": round(len(lat) / self.wall_s, 2) if self.wall_s else math.nan,
            # The serving process's own CPU per request (gateway or bare app; None for vLLM).
            "server_cpu_ms_per_request": (
                round(self.server_cpu_s * 1000 / len(self.latencies), 4)
                if self.server_cpu_s is not None and self.latencies
                else None
            ),
        }


# ---------------------------------------------------------------- load generation


async def run_segment(
    session: aiohttp.ClientSession, url: str, payloads: list[bytes], concurrency: int
) -> Sample:
    """Closed loop: `concurrency` workers send `payloads` (in order) as fast as answers come."""
    latencies: list[float] = [math.nan] * len(payloads)
    bodies: list[bytes] = [b""] * len(payloads)
    ok = [False] * len(payloads)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(payloads):
            index = next_index
            next_index += 1
            started = time.perf_counter()
            try:
                async with session.post(url, data=payloads[index], headers=JSON) as response:
                    bodies[index] = await response.read()
                    ok[index] = response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                pass
            latencies[index] = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(payloads)))))
    wall_s = time.perf_counter() - started
    # Failed requests are counted, not timed; their body slot stays empty (pairs stay aligned).
    return Sample(
        latencies=[lat if good else math.nan for lat, good in zip(latencies, ok, strict=True)],
        wall_s=wall_s,
        errors=ok.count(False),
        bodies=[body if good else b"" for body, good in zip(bodies, ok, strict=True)],
    )


def session_for(concurrency: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        # Shorter than uvicorn's 5 s keep-alive: no request is sent on a connection being closed.
        connector=aiohttp.TCPConnector(limit=max(concurrency, 1), keepalive_timeout=4),
        timeout=REQUEST_TIMEOUT,
    )


# The CPU meters of the servers this run started, by path name ("gateway", "bare_fastapi").
CPU_METERS: dict[str, ProcessCpu] = {}


async def interleaved(
    paths: dict[str, tuple[str, list[bytes]]], concurrency: int, rounds: int, per_round: int
) -> dict[str, Sample]:
    """Run each path's payloads in `rounds` slices; the path that goes first alternates."""
    names = list(paths)
    totals = {name: Sample() for name in names}
    sessions = {name: session_for(concurrency) for name in names}
    try:
        for round_index in range(rounds):
            order = names if round_index % 2 == 0 else list(reversed(names))
            for name in order:
                url, payloads = paths[name]
                # Misses have a payload per request; hits cycle over a small prompt set.
                start = round_index * per_round
                chunk = [payloads[(start + i) % len(payloads)] for i in range(per_round)]
                meter = CPU_METERS.get(name)
                cpu_before = meter.seconds() if meter else 0.0
                segment = await run_segment(sessions[name], url, chunk, concurrency)
                if meter:
                    segment.server_cpu_s = meter.seconds() - cpu_before
                totals[name].add(segment)
    finally:
        for session in sessions.values():
            await session.close()
    return totals


# ---------------------------------------------------------------- the bodies


@dataclass
class Bodies:
    settings: Settings
    policy_id: str
    policy_body: str
    category_ids: tuple[str, ...]

    @classmethod
    def create(cls, settings: Settings, policy_id: str) -> Bodies:
        store = PolicyStore([settings.shipped_policy_dir or SHIPPED_POLICY_DIR], policy_id)
        policy = store.get(policy_id)
        assert policy is not None
        ids = policy.category_ids if settings.elicit_categories else ()
        return cls(settings, policy_id, policy.body, ids)

    def gateway(self, text: str, *, cache: bool = True) -> bytes:
        body: dict[str, Any] = {"input": text, "policy_id": self.policy_id}
        if not cache:
            body["cache"] = False
        return orjson.dumps(body)

    def direct(self, text: str) -> bytes:
        """What the gateway sends to /v1/chat/completions for this prompt check."""
        s = self.settings
        messages = render_messages(
            [Turn(Role.USER, text)],
            self.policy_body,
            Target.PROMPT,
            ask_categories=bool(self.category_ids),
        )
        body: dict[str, Any] = {
            "model": s.model_name,
            "messages": messages,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        }
        if s.structured_outputs:
            regex = answer_regex(s.reasoning_max_chars, self.category_ids)
            body["structured_outputs"] = {"regex": regex}
        return orjson.dumps(body)


def prompts(tag: str, count: int) -> list[str]:
    return [f"[{tag}-{i}] {TOPICS[i % len(TOPICS)]}" for i in range(count)]


def prompt_tokens(body: bytes) -> int | None:
    try:
        document = orjson.loads(body)
        return int(document["usage"]["prompt_tokens"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


# ---------------------------------------------------------------- the experiments


async def model_calls(session: aiohttp.ClientSession, model_url: str) -> float:
    async with session.get(f"{model_url}/metrics") as response:
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:request_success_total")
    )


async def settled_calls(session: aiohttp.ClientSession, model_url: str, wait: float = 0.5) -> float:
    """The counter once it stopped moving (requests finish a moment before the answer leaves)."""
    value = await model_calls(session, model_url)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        await asyncio.sleep(wait)
        again = await model_calls(session, model_url)
        if again == value:
            return value
        value = again
    return value


async def miss_experiment(
    gateway_url: str, model_url: str, bodies: Bodies, plan: Plan, run_id: str
) -> list[dict[str, Any]]:
    levels = []
    warm_direct, warm_gateway = (
        prompts(f"{run_id}-warm-d", plan.warmup),
        prompts(f"{run_id}-warm-g", plan.warmup),
    )
    await interleaved(
        {
            "direct": (
                f"{model_url}/v1/chat/completions",
                [bodies.direct(t) for t in warm_direct],
            ),
            "gateway": (f"{gateway_url}/v1/moderate", [bodies.gateway(t) for t in warm_gateway]),
        },
        concurrency=min(4, plan.warmup),
        rounds=1,
        per_round=plan.warmup,
    )
    for concurrency, rounds, per_round in plan.miss:
        # Same shape, different texts: no prefix-cache hit for whichever path comes second.
        direct_texts = prompts(f"{run_id}-miss-c{concurrency}-d", rounds * per_round)
        gateway_texts = prompts(f"{run_id}-miss-c{concurrency}-g", rounds * per_round)
        result = await interleaved(
            {
                "direct": (
                    f"{model_url}/v1/chat/completions",
                    [bodies.direct(t) for t in direct_texts],
                ),
                "gateway": (
                    f"{gateway_url}/v1/moderate",
                    [bodies.gateway(t) for t in gateway_texts],
                ),
            },
            concurrency,
            rounds,
            per_round,
        )
        direct, gateway = result["direct"], result["gateway"]
        d, g = direct.summary(), gateway.summary()
        pairs = [
            gl - dl
            for gl, dl in zip(gateway.latencies, direct.latencies, strict=True)
            if not (math.isnan(gl) or math.isnan(dl))
        ]
        token_counts = [
            (prompt_tokens(gb), prompt_tokens(db))
            for gb, db in zip(gateway.bodies, direct.bodies, strict=True)
        ]
        same_tokens = [
            g_tokens is not None and g_tokens == d_tokens for g_tokens, d_tokens in token_counts
        ]
        cached = sum(1 for b in gateway.bodies if b and orjson.loads(b).get("cached") is True)
        levels.append(
            {
                "concurrency": concurrency,
                "requests_per_path": rounds * per_round,
                "direct": d,
                "gateway": g,
                "overhead_ms": {
                    "p50": round(g["p50_ms"] - d["p50_ms"], 3),
                    "p99": round(g["p99_ms"] - d["p99_ms"], 3),
                    "paired_p50": round(percentile(pairs, 50), 3) if pairs else math.nan,
                    "paired_p99": round(percentile(pairs, 99), 3) if pairs else math.nan,
                    "p50_ci95": difference_ci(direct.latencies, gateway.latencies, 50),
                    "p99_ci95": difference_ci(direct.latencies, gateway.latencies, 99),
                },
                "throughput_ratio": round(g["rps"] / d["rps"], 3) if d["rps"] else math.nan,
                "same_prompt_tokens": round(sum(same_tokens) / len(same_tokens), 3),
                "gateway_cache_hits": cached,
            }
        )
        print(
            f"  miss c={concurrency}: direct p50 {d['p50_ms']:.1f} ms, gateway p50"
            f" {g['p50_ms']:.1f} ms, ratio {levels[-1]['throughput_ratio']}",
            file=sys.stderr,
        )
    return levels


async def hit_experiment(
    gateway_url: str, bare_url: str, bodies: Bodies, plan: Plan, run_id: str
) -> list[dict[str, Any]]:
    texts = prompts(f"{run_id}-hit", plan.hit_prompts)
    payloads = [bodies.gateway(t) for t in texts]
    async with session_for(8) as session:  # warm the cache: one miss each
        warm = await run_segment(session, f"{gateway_url}/v1/moderate", payloads, 8)
        if warm.errors:
            raise RuntimeError(f"{warm.errors} errors while warming the cache")
    levels = []
    for concurrency, rounds, per_round in plan.hit:
        result = await interleaved(
            {
                "gateway": (f"{gateway_url}/v1/moderate", payloads),
                "bare_fastapi": (f"{bare_url}/v1/moderate", payloads),
            },
            concurrency,
            rounds,
            per_round,
        )
        g, b = result["gateway"].summary(), result["bare_fastapi"].summary()
        hits = sum(1 for body in result["gateway"].bodies if body and b'"cached":true' in body)
        levels.append(
            {
                "concurrency": concurrency,
                "requests_per_path": rounds * per_round,
                "gateway": g,
                "bare_fastapi": b,
                "rps_ratio": round(g["rps"] / b["rps"], 3) if b["rps"] else math.nan,
                "gateway_hit_fraction": round(hits / max(1, len(result["gateway"].bodies)), 3),
            }
        )
        print(
            f"  hit c={concurrency}: gateway p50 {g['p50_ms']:.2f} ms {g['rps']:.0f} req/s,"
            f" bare p50 {b['p50_ms']:.2f} ms {b['rps']:.0f} req/s",
            file=sys.stderr,
        )
    return levels


async def burst(
    session: aiohttp.ClientSession, url: str, payload: bytes, count: int
) -> tuple[list[float], list[bytes]]:
    async def one() -> tuple[float, bytes]:
        started = time.perf_counter()
        async with session.post(url, data=payload, headers=JSON) as response:
            body = await response.read() if response.status == 200 else b""
        return (time.perf_counter() - started) * 1000, body

    answers = await asyncio.gather(*(one() for _ in range(count)))
    return [a[0] for a in answers], [a[1] for a in answers]


async def single_flight_experiment(
    gateway_url: str, model_url: str, bodies: Bodies, plan: Plan, run_id: str
) -> dict[str, Any]:
    report: dict[str, Any] = {"burst": plan.burst}
    async with session_for(plan.burst) as session:
        for name, cache in (("single_flight", True), ("control_cache_false", False)):
            text = f"[{run_id}-burst-{name}] {TOPICS[3]}"
            before = await settled_calls(session, model_url)
            latencies, answers = await burst(
                session, f"{gateway_url}/v1/moderate", bodies.gateway(text, cache=cache), plan.burst
            )
            after = await settled_calls(session, model_url)
            decoded = [orjson.loads(a) for a in answers if a]
            report[name] = {
                "requests": plan.burst,
                "ok": len(decoded),
                "model_calls": int(after - before),
                "cached_answers": sum(1 for a in decoded if a.get("cached")),
                "same_verdict": len({a["verdict"] for a in decoded}) == 1,
                "latency_ms": {
                    "p50": round(percentile(latencies, 50), 3),
                    "max": round(max(latencies), 3),
                },
            }
            print(f"  burst {name}: {report[name]['model_calls']} model calls", file=sys.stderr)
    return report


# ---------------------------------------------------------------- report


def checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def add(name: str, value: float, limit: float, at_most: bool) -> None:
        met = value <= limit if at_most else value >= limit
        found.append(
            {
                "target": name,
                "value": value,
                "limit": limit,
                "rule": "<=" if at_most else ">=",
                "met": bool(met),
            }
        )

    for level in report["miss"]["levels"]:
        c = level["concurrency"]
        if c in (1, 16):
            overhead = level["overhead_ms"]
            add(f"miss overhead p50 at {c}", overhead["p50"], TARGETS["miss_overhead_p50_ms"], True)
            add(f"miss overhead p99 at {c}", overhead["p99"], TARGETS["miss_overhead_p99_ms"], True)
        if c == 64:
            add(
                "miss throughput ratio at 64",
                level["throughput_ratio"],
                TARGETS["miss_throughput_ratio_at_64"],
                False,
            )
    for level in report["hit"]["levels"]:
        if level["concurrency"] == 1:
            add("hit p50 ms at 1", level["gateway"]["p50_ms"], TARGETS["hit_p50_ms_at_1"], True)
        if level["concurrency"] == 64:
            add(
                "hit req/s ratio vs bare FastAPI at 64",
                level["rps_ratio"],
                TARGETS["hit_rps_ratio_at_64"],
                False,
            )
    return found


def cpu_cell(summary: dict[str, Any]) -> str:
    cpu = summary.get("server_cpu_ms_per_request")
    return "n/a" if cpu is None else f"{cpu * 1000:.0f} µs"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"## Gateway benchmark ({report['meta']['mode']}, {report['meta']['cpus']} CPUs,"
        f" {report['meta']['started_at']})",
        "",
        "### (a) cache miss: gateway vs model server direct (same-shape texts, interleaved)",
        "",
        "| clients | req/path | direct p50 | gateway p50 | +p50 (95% CI) | direct p99 |"
        " gateway p99 | +p99 (95% CI) | direct req/s | gateway req/s | ratio | gateway CPU/req |"
        " same prompt tokens |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lv in report["miss"]["levels"]:
        d, g, o = lv["direct"], lv["gateway"], lv["overhead_ms"]
        (p50_low, p50_high), (p99_low, p99_high) = o["p50_ci95"], o["p99_ci95"]
        lines.append(
            f"| {lv['concurrency']} | {lv['requests_per_path']} | {d['p50_ms']:.1f} ms |"
            f" {g['p50_ms']:.1f} ms | {o['p50']:+.2f} ms ({p50_low:+.1f} … {p50_high:+.1f}) |"
            f" {d['p99_ms']:.1f} ms | {g['p99_ms']:.1f} ms |"
            f" {o['p99']:+.2f} ms ({p99_low:+.1f} … {p99_high:+.1f}) |"
            f" {d['rps']:.1f} | {g['rps']:.1f} | {lv['throughput_ratio']:.3f} |"
            f" {cpu_cell(g)} | {lv['same_prompt_tokens']:.0%} |"
        )
    lines += [
        "",
        "### (b) cache hit: gateway vs bare FastAPI endpoint (same uvicorn settings)",
        "",
        "| clients | req/path | gateway p50 | gateway p99 | bare p50 | bare p99 | gateway req/s |"
        " bare req/s | ratio | gateway CPU/req | bare CPU/req | hit fraction |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lv in report["hit"]["levels"]:
        g, b = lv["gateway"], lv["bare_fastapi"]
        lines.append(
            f"| {lv['concurrency']} | {lv['requests_per_path']} | {g['p50_ms']:.2f} ms |"
            f" {g['p99_ms']:.2f} ms | {b['p50_ms']:.2f} ms | {b['p99_ms']:.2f} ms |"
            f" {g['rps']:.0f} | {b['rps']:.0f} | {lv['rps_ratio']:.3f} |"
            f" {cpu_cell(g)} | {cpu_cell(b)} | {lv['gateway_hit_fraction']:.0%} |"
        )
    sf = report["single_flight"]
    lines += [
        "",
        f"### (c) burst of {sf['burst']} identical concurrent cache-miss requests",
        "",
        "| run | ok | model calls (vLLM counter) | cached answers | same verdict | p50 | max |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in ("single_flight", "control_cache_false"):
        r = sf[name]
        lines.append(
            f"| {name} | {r['ok']}/{r['requests']} | {r['model_calls']} | {r['cached_answers']} |"
            f" {r['same_verdict']} | {r['latency_ms']['p50']:.1f} ms |"
            f" {r['latency_ms']['max']:.1f} ms |"
        )
    lines += ["", "### targets (reported, not asserted)", "", "| target | value | rule | met |"]
    lines.append("| --- | --- | --- | --- |")
    for check in report["checks"]:
        lines.append(
            f"| {check['target']} | {check['value']} | {check['rule']} {check['limit']} |"
            f" {'yes' if check['met'] else 'NO'} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- main


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
            gateway_url = stack.start_gateway(model_url, redis_url, settings, run_id)
        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        with runner:
            bare_url = stack.start_bare(runner.run(record_hit_body(gateway_url, bodies, run_id)))
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
