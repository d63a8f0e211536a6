#!/usr/bin/env python
"""What the decision log costs on the cheapest request: a cache hit, log on vs log off.

    .venv/bin/python scripts/benchmark_decision_log.py            # 1 and 64 clients
    .venv/bin/python scripts/benchmark_decision_log.py --quick    # a few seconds (smoke)

Two gateway processes, identical but for RSAFE_DATABASE_URL (a scratch database on the PostgreSQL
at --postgres-url, created and dropped by the run), in front of the stand-in model server of
tests/standins.py (the subject is the log: after one warm-up miss per prompt every request is a
hit from the in-process LRU, Redis off). The load (aiohttp on uvloop, in-process, loopback)
alternates between the two in rounds, as scripts/benchmark.py does. Reported: p50/p99 per path,
added p50 (on - off), throughput ratio (on / off), each gateway's CPU per request, and the rows
the log wrote (every answered request of the "on" gateway must be one). Targets (issue 19): added
p50 <= 0.1 ms and ratio >= 0.95 at 64 clients; reported, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg
import uvloop
from devstack import REPO, ProcessCpu, Stack
from gateway_bench.shared import CPU_METERS, interleaved, run_segment, session_for

sys.path.insert(0, str(REPO / "tests"))
from standins import VALID_COMPLETION, standin_server

LEVELS_FULL = ((1, 4, 500), (64, 4, 3000))  # (clients, rounds, requests per round and path)
LEVELS_QUICK = ((1, 2, 100), (64, 2, 500))
PROMPTS = 64
# RSAFE_* settings of this run, for both gateways (e.g. RSAFE_DECISION_LOG_FLUSH_SECONDS).
EXTRA_ENV = {k: v for k, v in os.environ.items() if k.startswith("RSAFE_")}


def start_gateway(stack: Stack, name: str, model_url: str, database_url: str | None) -> str:
    env = {
        "PATH": "/usr/bin:/bin",
        "RSAFE_MODEL_SERVER_URL": model_url,
        "RSAFE_REDIS_URL": "",
        "RSAFE_DATABASE_URL": database_url or "",
        **EXTRA_ENV,
    }
    # The stand-in lists no models: ready is /healthz, not /readyz.
    return stack.start_gateway(env, name, ready_path="/healthz", inherit_env=False)


def rows(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        found = connection.execute("SELECT count(*) FROM decisions").fetchone()
    return int(found[0]) if found else 0


async def measure(urls: dict[str, str], levels: tuple[tuple[int, int, int], ...]) -> list[Any]:
    payloads = [orjson.dumps({"input": f"benchmark prompt {i}"}) for i in range(PROMPTS)]
    async with session_for(8) as session:  # one miss per prompt, then every request is a hit
        for url in urls.values():
            warm = await run_segment(session, f"{url}/v1/moderate", payloads, 8)
            if warm.errors:
                raise RuntimeError(f"{warm.errors} errors while warming {url}")
    results = []
    for clients, rounds, per_round in levels:
        samples = await interleaved(
            {name: (f"{url}/v1/moderate", payloads) for name, url in urls.items()},
            clients,
            rounds,
            per_round,
        )
        off, on = samples["log_off"].summary(), samples["log_on"].summary()
        results.append(
            {
                "clients": clients,
                "requests_per_path": rounds * per_round,
                "log_off": off,
                "log_on": on,
                "added_p50_ms": round(on["p50_ms"] - off["p50_ms"], 3),
                "rps_ratio": round(on["rps"] / off["rps"], 3),
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", type=Path, default=REPO / ".cache" / "benchmark-decision-log.json")
    options = parser.parse_args(argv)
    levels = LEVELS_QUICK if options.quick else LEVELS_FULL
    name = f"rsafe_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(options.postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    database_url = options.postgres_url.rsplit("/", 1)[0] + f"/{name}"
    stack = Stack(Path(tempfile.mkdtemp(prefix="rsafe-bench-dlog-")))
    wall = time.perf_counter()
    try:
        with standin_server(200, VALID_COMPLETION) as model_url:
            urls = {
                "log_off": start_gateway(stack, "log_off", model_url, None),
                "log_on": start_gateway(stack, "log_on", model_url, database_url),
            }
            for path in urls:
                pid = stack.pid_of(path)
                assert pid is not None
                CPU_METERS[path] = ProcessCpu(pid)
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results = runner.run(measure(urls, levels))
            answered_on = PROMPTS + sum(level["log_on"]["requests"] for level in results)
            deadline = time.monotonic() + 30
            while rows(database_url) < answered_on and time.monotonic() < deadline:
                time.sleep(0.2)  # the writer catches up (polling the table, not a fixed wait)
            written = rows(database_url)
    finally:
        stack.stop()
        with psycopg.connect(options.postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    report = {
        "duration_s": round(time.perf_counter() - wall, 1),
        "model_server": "tests/standins.py stand-in (every measured request is a cache hit)",
        "levels": results,
        "log_rows": {"answered_by_log_on": answered_on, "rows_written": written},
    }
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print("| clients | log off p50 / p99 / req/s | log on p50 / p99 / req/s | added p50 | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for level in results:
        off, on = level["log_off"], level["log_on"]
        print(
            f"| {level['clients']}"
            f" | {off['p50_ms']:.3f} / {off['p99_ms']:.2f} ms / {off['rps']:.0f}"
            f" | {on['p50_ms']:.3f} / {on['p99_ms']:.2f} ms / {on['rps']:.0f}"
            f" | {level['added_p50_ms']:+.3f} ms | {level['rps_ratio']:.3f} |"
        )
    cpu = [
        f"{path} {level[path]['server_cpu_ms_per_request']} ms"
        for level in results[-1:]
        for path in ("log_off", "log_on")
    ]
    print(f"CPU per request at {results[-1]['clients']} clients: {', '.join(cpu)}")
    print(f"decision log: {written} rows for {answered_on} answers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
