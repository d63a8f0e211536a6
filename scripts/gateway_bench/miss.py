"""(a) Cache misses: the gateway against the model server directly, same-shape texts, interleaved
rounds (see scripts/benchmark.py for what is measured and why)."""

from __future__ import annotations

import math
import sys
from typing import Any

import orjson

from .shared import Bodies, Plan, difference_ci, interleaved, percentile, prompt_tokens, prompts


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
