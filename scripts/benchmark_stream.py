#!/usr/bin/env python
"""What the guarded chat proxy costs a streaming client: added time to first token and added
total time, against calling the upstream LLM directly, at 1 and 16 concurrent streams, for a few
window sizes and modes.

SCRIPTED STAND-INS, not real models (tests/chat_proxy/standins.py, on a thread of this process):
the upstream streams a ~800-character reply one word per chunk, after a first-token delay, with a
fixed delay between words; the guard answers every check after a fixed delay and is never the
bottleneck (no batching slowdown). So the numbers are the proxy's own behaviour (hold-back,
pipelined checks) under a guard of known latency, not a model's speed. The gateway runs as a
real process (`python -m rsafe_gateway`, cache only in-process: every request has its own user
turn, so no check is a cache hit).

    .venv/bin/python scripts/benchmark_stream.py [--rounds 3] [--guard-ms 250] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "scripts"))

from devstack import Stack  # noqa: E402

from chat_proxy.standins import SAFE_REPLY, Standins, words  # noqa: E402

REPLY_REPEATS = 5  # the reply: SAFE_REPLY five times (~800 characters, ~150 words)


@dataclass(frozen=True)
class Variant:
    name: str
    env: dict[str, str]


VARIANTS = [
    Variant("held, window 100", {"RSAFE_PROXY_WINDOW_CHARS": "100"}),
    Variant("held, window 300", {"RSAFE_PROXY_WINDOW_CHARS": "300"}),
    Variant("held, window 600", {"RSAFE_PROXY_WINDOW_CHARS": "600"}),
    Variant(
        "held, window 300, parallel input",
        {"RSAFE_PROXY_WINDOW_CHARS": "300", "RSAFE_PROXY_INPUT_CHECK": "parallel"},
    ),
    Variant(
        "optimistic, window 300",
        {"RSAFE_PROXY_WINDOW_CHARS": "300", "RSAFE_PROXY_OUTPUT_RELEASE": "optimistic"},
    ),
]


async def one_stream(session: aiohttp.ClientSession, url: str) -> tuple[float, float, str]:
    """(time to first content token, total time, text) of one streamed completion."""
    body = {
        "model": "standin",
        "messages": [{"role": "user", "content": f"How do I bake bread? [{uuid.uuid4().hex}]"}],
        "stream": True,
        "script": "bench",
    }
    loop = asyncio.get_running_loop()
    started = loop.time()
    first: float | None = None
    text: list[str] = []
    async with session.post(f"{url}/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.content:
            if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                continue
            chunk = orjson.loads(line[6:])
            for choice in chunk.get("choices", []):
                content = choice.get("delta", {}).get("content")
                if content:
                    text.append(content)
                    first = first if first is not None else loop.time()
    assert first is not None, "no content streamed"
    return first - started, loop.time() - started, "".join(text)


async def measure(url: str, clients: int, rounds: int) -> dict[str, float]:
    ttft: list[float] = []
    total: list[float] = []
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await one_stream(session, url)  # warm-up: connections, first-call costs
        for _ in range(rounds):
            results = await asyncio.gather(*(one_stream(session, url) for _ in range(clients)))
            for first, whole, text in results:
                assert text == SAFE_REPLY * REPLY_REPEATS, "the reply arrived altered or cut"
                ttft.append(first)
                total.append(whole)
    return {
        "ttft_p50_ms": statistics.median(ttft) * 1000,
        "ttft_p90_ms": statistics.quantiles(ttft, n=10)[-1] * 1000 if len(ttft) > 1 else ttft[0],
        "total_p50_ms": statistics.median(total) * 1000,
        "streams": len(ttft),
    }


async def checks_per_reply(url: str) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        text = await response.text()
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("rsafe_proxy_output_checks_per_reply_")
    }
    count = values.get("rsafe_proxy_output_checks_per_reply_count", 0.0)
    return values.get("rsafe_proxy_output_checks_per_reply_sum", 0.0) / count if count else 0.0


def start_gateway(stack: Stack, standins: Standins, variant: Variant) -> str:
    env = {
        "RSAFE_MODEL_SERVER_URL": standins.guard_url,
        "RSAFE_UPSTREAM_URL": standins.llm_url,
        "RSAFE_REDIS_URL": "",
        "RSAFE_LOG_LEVEL": "warning",
        **variant.env,
    }
    return stack.start_gateway(env, f"gateway-{len(stack.processes)}", ready_path="/healthz")


def print_table(results: list[dict[str, Any]]) -> None:
    """The Markdown table of `results` (one row per variant and client count)."""
    print("| variant | clients | TTFT p50 (direct) | added TTFT p50 | total p50 (direct) | "
          "added total p50 | checks/reply |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in results:
        print(
            f"| {row['variant']} | {row['clients']} | {row['ttft_p50_ms']:.0f} ms "
            f"({row['direct_ttft_p50_ms']:.0f}) | +{row['added_ttft_p50_ms']:.0f} ms | "
            f"{row['total_p50_ms']:.0f} ms ({row['direct_total_p50_ms']:.0f}) | "
            f"+{row['added_total_p50_ms']:.0f} ms | {row['checks_per_reply']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of N concurrent streams")
    parser.add_argument("--token-ms", type=float, default=20.0, help="upstream delay per word")
    parser.add_argument("--first-token-ms", type=float, default=150.0)
    parser.add_argument("--guard-ms", type=float, default=250.0, help="guard delay per check")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "benchmark-stream.json")
    options = parser.parse_args()

    standins = Standins(
        token_delay=options.token_ms / 1000,
        first_token_delay=options.first_token_ms / 1000,
        guard_delay=options.guard_ms / 1000,
    )
    standins.bench_reply = SAFE_REPLY * REPLY_REPEATS
    results: list[dict[str, Any]] = []
    log_dir = Path(tempfile.mkdtemp(prefix="rsafe-bench-stream-"))
    stack = Stack(log_dir)
    print(
        f"stand-in upstream: {len(words(standins.bench_reply))} words, first token after "
        f"{options.first_token_ms:.0f} ms, then {options.token_ms:.0f} ms per word; stand-in "
        f"guard: {options.guard_ms:.0f} ms per check; {options.rounds} rounds per row",
        flush=True,
    )
    with standins.running():
        try:
            direct = {c: asyncio.run(measure(standins.llm_url, c, options.rounds)) for c in (1, 16)}
            for variant in VARIANTS:
                url = start_gateway(stack, standins, variant)
                for clients in (1, 16):
                    row: dict[str, Any] = asyncio.run(measure(url, clients, options.rounds))
                    base = direct[clients]
                    row.update(
                        variant=variant.name,
                        clients=clients,
                        added_ttft_p50_ms=row["ttft_p50_ms"] - base["ttft_p50_ms"],
                        added_total_p50_ms=row["total_p50_ms"] - base["total_p50_ms"],
                        direct_ttft_p50_ms=base["ttft_p50_ms"],
                        direct_total_p50_ms=base["total_p50_ms"],
                    )
                    results.append(row)
                checks = asyncio.run(checks_per_reply(url))
                for row in results[-2:]:
                    row["checks_per_reply"] = checks
                stack.stop()
        finally:
            stack.stop()
    print_table(results)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    report = {"options": {**vars(options), "out": str(options.out)}, "results": results}
    options.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"written: {options.out}")


if __name__ == "__main__":
    main()
