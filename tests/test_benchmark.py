"""`scripts/benchmark.py --quick` against the session's real stack: it runs, and its JSON has
every section and number (the values are measurements, reported, not asserted here)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from conftest import REPO, GatewayProcess, VllmServer

pytestmark = pytest.mark.e2e

NUMBERS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "rps")


def assert_stats(stats: dict[str, float]) -> None:
    assert stats["errors"] == 0
    for key in NUMBERS:
        assert isinstance(stats[key], float | int) and math.isfinite(stats[key]), key


def test_quick_benchmark_writes_all_sections(
    gateway_process: GatewayProcess, vllm_server: VllmServer, tmp_path: Path
) -> None:
    out = tmp_path / "benchmark.json"
    result = subprocess.run(
        [
            sys.executable, str(REPO / "scripts" / "benchmark.py"), "--quick",
            "--gateway-url", gateway_process.url, "--model-url", vllm_server.url,
            "--out", str(out), "--log-dir", str(tmp_path / "logs"),
        ],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(a) cache miss" in result.stdout and "targets" in result.stdout
    report = orjson.loads(out.read_bytes())

    assert report["meta"]["mode"] == "quick" and report["meta"]["started_stack"] is False
    misses = report["miss"]["levels"]
    assert [level["concurrency"] for level in misses] == [1, 16, 64]
    for level in misses:
        assert_stats(level["direct"])
        assert_stats(level["gateway"])
        for key in ("p50", "p99", "paired_p50", "paired_p99"):
            assert math.isfinite(level["overhead_ms"][key])
        for key in ("p50_ci95", "p99_ci95"):
            low, high = level["overhead_ms"][key]
            assert math.isfinite(low) and low <= high
        assert level["throughput_ratio"] > 0
        # the direct path sent exactly the gateway's prompt (same token count for every prompt)
        assert level["same_prompt_tokens"] == 1.0
        assert level["gateway_cache_hits"] == 0  # they were real misses

    hits = report["hit"]["levels"]
    assert [level["concurrency"] for level in hits] == [1, 64]
    for level in hits:
        assert_stats(level["gateway"])
        assert_stats(level["bare_fastapi"])
        assert level["rps_ratio"] > 0
        assert level["gateway_hit_fraction"] == 1.0
        # CPU per request is read for the servers the script started: the bare app, not the
        # gateway it was pointed at.
        assert level["bare_fastapi"]["server_cpu_ms_per_request"] >= 0
        assert level["gateway"]["server_cpu_ms_per_request"] is None
    # /proc counts in clock ticks (10 ms): only the sum over the levels is surely above zero.
    assert sum(level["bare_fastapi"]["server_cpu_ms_per_request"] for level in hits) > 0

    burst = report["single_flight"]
    for name in ("single_flight", "control_cache_false"):
        run = burst[name]
        assert run["ok"] == run["requests"] == burst["burst"]
        assert isinstance(run["model_calls"], int) and run["model_calls"] >= 1
        assert math.isfinite(run["latency_ms"]["p50"])

    assert {check["target"] for check in report["checks"]} >= {
        "miss overhead p50 at 1", "miss overhead p99 at 16", "miss throughput ratio at 64",
        "hit p50 ms at 1", "hit req/s ratio vs bare FastAPI at 64",
    }  # fmt: skip
    assert all(isinstance(check["met"], bool) for check in report["checks"])
