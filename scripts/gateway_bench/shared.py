"""What every experiment of the gateway benchmark shares: the plan (request counts), the targets,
the request bodies (the direct path's built with the gateway's own prompt code), statistics and
the closed-loop load generator."""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from devstack import ProcessCpu  # first: this checkout's gateway sources on the path
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
