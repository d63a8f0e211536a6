"""(b) Cache hits: the gateway answering from its cache against a bare FastAPI endpoint
(`bare_app.py`) run with the same uvicorn settings, interleaved rounds."""

from __future__ import annotations

import math
import sys
from typing import Any

from .shared import Bodies, Plan, interleaved, prompts, run_segment, session_for


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
