"""(c) Single-flight: a burst of identical concurrent cache misses, model calls counted from
vLLM's own counter; the same burst with `cache: false` is the control."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import aiohttp
import orjson

from .shared import JSON, TOPICS, Bodies, Plan, percentile, session_for


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
