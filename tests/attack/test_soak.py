"""Soak: 10,000 requests (95 % cache hits, 5 % misses over distinct texts) at concurrency 32
against a REAL gateway process, the REAL vLLM and the REAL Redis: no errors, bounded memory.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import RedisServer, VllmServer, start_gateway, stop_process

from .helpers import ANSWER_FIELDS, percentile, rss_mib, run_load

pytestmark = pytest.mark.e2e

REQUESTS = 10_000
MISS_EVERY = 20  # 5 % misses, each over a text never seen before
HOT_TEXTS = 64
CONCURRENCY = 32
TIME_LIMIT_S = 150.0
RSS_GROWTH_LIMIT_MIB = 50.0


def test_soak_ten_thousand_requests_without_errors_or_memory_growth(
    vllm_server: VllmServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    hot = [f"soak {run} hot question {index}" for index in range(HOT_TEXTS)]
    gateway = start_gateway(
        {"RSAFE_MODEL_SERVER_URL": vllm_server.url, "RSAFE_REDIS_URL": redis_server.url},
        tmp_path / "gateway.log",
    )
    try:
        pid = gateway.process.pid
        # Warm-up: the hot texts get cached, code paths and pools get exercised once.
        warm = [{"input": text} for text in hot] + [
            {"input": f"soak {run} warm-up {i}"} for i in range(64)
        ]
        assert all(
            o.status == 200 for o in asyncio.run(run_load(gateway.url, warm, concurrency=32))
        )
        rss_start = rss_mib(pid)

        payloads = [
            {"input": f"soak {run} cold question {i}"}
            if i % MISS_EVERY == 0
            else {"input": hot[i % HOT_TEXTS]}
            for i in range(REQUESTS)
        ]
        rss_samples: list[float] = []

        def sample(done: int) -> None:
            if done % 1000 == 0:
                rss_samples.append(rss_mib(pid))

        started = time.monotonic()
        outcomes = asyncio.run(
            asyncio.wait_for(
                run_load(
                    gateway.url,
                    payloads,
                    concurrency=CONCURRENCY,
                    request_timeout_s=60,
                    on_progress=sample,
                ),
                TIME_LIMIT_S,
            )
        )
        elapsed = time.monotonic() - started
        rss_end = rss_mib(pid)
        errors = [o for o in outcomes if o.status != 200]
        misses = sum(1 for o in outcomes if o.status == 200 and not o.body["cached"])
        latencies = [o.latency for o in outcomes]
        print(
            f"\nsoak: {len(outcomes)} requests in {elapsed:.1f}s ({len(outcomes) / elapsed:.0f}/s), "
            f"{len(errors)} errors, {misses} misses; latency p50 "
            f"{percentile(latencies, 0.5) * 1000:.1f} ms p99 {percentile(latencies, 0.99) * 1000:.1f} "
            f"ms max {max(latencies) * 1000:.0f} ms; gateway RSS {rss_start:.1f} MiB -> "
            f"{rss_end:.1f} MiB ({rss_end - rss_start:+.1f}), peak {max(rss_samples):.1f} MiB"
        )
        assert len(outcomes) == REQUESTS
        assert not errors, [(o.status, o.failure, o.body) for o in errors[:5]]
        assert all(set(o.body) == ANSWER_FIELDS for o in outcomes[:: REQUESTS // 50])
        assert REQUESTS // MISS_EVERY <= misses <= REQUESTS // MISS_EVERY + HOT_TEXTS
        assert rss_end - rss_start < RSS_GROWTH_LIMIT_MIB
        assert max(rss_samples) - rss_start < RSS_GROWTH_LIMIT_MIB
        assert httpx.get(f"{gateway.url}/readyz", timeout=10).status_code == 200
    finally:
        stop_process(gateway.process)
