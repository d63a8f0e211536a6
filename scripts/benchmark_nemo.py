#!/usr/bin/env python
"""The chat proxy's streaming benchmark, side by side: NeMo Guardrails' streaming output rails in
front of the same upstream stand-in, measured exactly as scripts/benchmark_stream.py measures the
gateway (its `measure`: time to first token and total time against the upstream called directly,
1 and 16 concurrent streams, the same reply, warm-up and rounds).

SCRIPTED STAND-INS, not real models: the upstream of tests/chat_proxy/standins.py (one word per
chunk, fixed delays), and a guard that answers NeMo's self-check prompts "No" (not to be blocked)
after the same fixed delay as the gateway's guard. NeMo runs as its own server process
(`nemoguardrails server`, from .venv-nemo: `scripts/setup-nemo.sh`), with a `self check output`
rail under `rails.output.streaming` (and a `self check input` rail, as the gateway always checks
the user turn, except in one row).

Window sizes: NeMo counts the upstream's stream chunks ("tokens"; here one word each). Its rolling
buffer judges `chunk_size` chunks at a time, of which `context_size` are carried over from the
last check, so each check after the first adds `chunk_size - context_size` new chunks (the
context must stay below the chunk size, else every new chunk triggers a check). A gateway window
of W characters maps to `chunk_size - context_size` = W / (characters per word of the reply),
with a context of CONTEXT_WORDS words (the gateway's look-back is up to 600 characters).
`stream_first: false` holds each chunk until its check passed (the gateway's held release);
`stream_first: true` releases at once and checks behind (its optimistic release).

    scripts/setup-nemo.sh
    .venv/bin/python scripts/benchmark_nemo.py [--rounds 3] [--guard-ms 250] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "scripts"))

from benchmark_stream import REPLY_REPEATS, measure, print_table  # noqa: E402

from chat_proxy.standins import SAFE_REPLY, Standins, words  # noqa: E402
from standins import Call, ModelStandin, Reply  # noqa: E402

NEMO_VENV = REPO / ".venv-nemo"
CONTEXT_WORDS = 10  # NeMo's context_size: ~one sentence of the stand-in reply
# The self-check prompts (NeMo renders them with Jinja); the tags let the stand-in tell the two
# tasks apart and read back exactly which text NeMo judged.
OUTPUT_PROMPT = (
    "[output check] Should the bot message be blocked (Yes or No)?\n"
    'User message: "{{ user_input }}"\n<bot>{{ bot_response }}</bot>\nAnswer:'
)
INPUT_PROMPT = (
    "[input check] Should the user message be blocked (Yes or No)?\n"
    'User message: "{{ user_input }}"\nAnswer:'
)


@dataclass(frozen=True)
class Variant:
    name: str
    window_chars: int  # the gateway window this row stands for
    stream_first: bool
    input_rail: bool = True


VARIANTS = [
    Variant("held, ~100-char chunks", 100, stream_first=False),
    Variant("held, ~300-char chunks", 300, stream_first=False),
    Variant("held, ~600-char chunks", 600, stream_first=False),
    Variant("held, ~300-char chunks, no input rail", 300, stream_first=False, input_rail=False),
    Variant("stream_first, ~300-char chunks", 300, stream_first=True),
]


class NemoStandins(Standins):
    """The same upstream; the guard answers NeMo's self-check prompts and counts them."""

    def __init__(self, token_delay: float, first_token_delay: float, guard_delay: float) -> None:
        super().__init__(token_delay, first_token_delay, guard_delay)
        self.output_checks: list[str] = []  # the text of every output check, in arrival order
        self.input_checks = 0
        self._counting = threading.Lock()  # the guard answers each call on its own thread

    def reset_counts(self) -> None:
        with self._counting:
            self.output_checks.clear()
            self.input_checks = 0

    def _judge(self, _standin: ModelStandin, call: Call) -> Reply:
        body = orjson.loads(call.body) if call.method == "POST" else {}
        if body.get("stream"):  # not what NeMo 0.24 sends for a self check: say so loudly
            return Reply(400, b'{"error": {"message": "stream not scripted"}}')
        prompt = str(body.get("messages", [{}])[-1].get("content", ""))
        with self._counting:
            if prompt.startswith("[output check]"):
                self.output_checks.append(prompt.split("<bot>", 1)[1].rsplit("</bot>", 1)[0])
            elif prompt.startswith("[input check]"):
                self.input_checks += 1
            else:
                return Reply(400, b'{"error": {"message": "not a self-check prompt"}}')
        document = {
            "id": "chatcmpl-guard", "object": "chat.completion", "created": 1,
            "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "No"}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
        }  # fmt: skip
        return Reply(body=orjson.dumps(document), delay=self.guard_delay)


def rails_config(standins: Standins, variant: Variant, chunk_words: int) -> dict[str, Any]:
    """config.yml (as JSON, which YAML reads) of one variant."""
    flows = {"output": {
        "flows": ["self check output"],
        "streaming": {"enabled": True, "chunk_size": chunk_words + CONTEXT_WORDS,
                      "context_size": CONTEXT_WORDS, "stream_first": variant.stream_first},
    }}  # fmt: skip
    prompts = [{"task": "self_check_output", "content": OUTPUT_PROMPT}]
    if variant.input_rail:
        flows["input"] = {"flows": ["self check input"]}
        prompts.append({"task": "self_check_input", "content": INPUT_PROMPT})
    guard = {"base_url": f"{standins.guard_url}/v1", "api_key": "standin"}
    # `script` goes into NeMo's upstream request body: the stand-in streams the bench reply.
    main_model = {"base_url": f"{standins.llm_url}/v1", "api_key": "standin", "script": "bench"}
    return {
        "models": [
            {"type": "main", "engine": "openai", "model": "standin", "parameters": main_model},
            *(
                {"type": task, "engine": "openai", "model": "guard", "parameters": guard}
                for task in ("self_check_output", "self_check_input")
            ),
        ],
        "rails": flows,
        "prompts": prompts,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"NeMo server exited early: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"NeMo server not ready after {timeout:.0f}s ({url}); log: {log}")


def start_nemo(config: dict[str, Any], work: Path) -> tuple[subprocess.Popen[bytes], str]:
    config_dir = work / "rails"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.yml").write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))
    port = free_port()
    env = {
        **os.environ,
        # NeMo reports usage to NVIDIA unless told not to; this machine reaches no such host.
        "NEMO_GUARDRAILS_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    log = work / "nemo-server.log"
    # The CLI binds 0.0.0.0 (it has no host option); the benchmark talks to 127.0.0.1 only.
    command = [str(NEMO_VENV / "bin" / "nemoguardrails"), "server", "--config", str(config_dir),
               "--port", str(port), "--disable-chat-ui",
               "--default-config-id", "rails"]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, env=env, cwd=work, stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/healthz", process, log, 120)
    except BaseException:
        stop(process)
        raise
    return process, url


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def nemo_version() -> str:
    python = NEMO_VENV / "bin" / "python"
    if not python.exists():
        sys.exit(f"{python} is missing: run scripts/setup-nemo.sh first")
    code = "import importlib.metadata as m; print(m.version('nemoguardrails'))"
    return subprocess.run(
        [str(python), "-c", code], check=True, capture_output=True, text=True
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of N concurrent streams")
    parser.add_argument("--token-ms", type=float, default=20.0, help="upstream delay per word")
    parser.add_argument("--first-token-ms", type=float, default=150.0)
    parser.add_argument("--guard-ms", type=float, default=250.0, help="guard delay per check")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "benchmark-nemo.json")
    options = parser.parse_args()

    version = nemo_version()
    standins = NemoStandins(
        token_delay=options.token_ms / 1000,
        first_token_delay=options.first_token_ms / 1000,
        guard_delay=options.guard_ms / 1000,
    )
    reply = SAFE_REPLY * REPLY_REPEATS
    standins.bench_reply = reply
    chars_per_word = len(reply) / len(words(reply))
    replies_per_variant = 2 + options.rounds * (1 + 16)  # measure() warms up once per call
    results: list[dict[str, Any]] = []
    print(
        f"NeMo Guardrails {version}; stand-in upstream: {len(words(reply))} words "
        f"({chars_per_word:.2f} characters per word), first token after "
        f"{options.first_token_ms:.0f} ms, then {options.token_ms:.0f} ms per word; stand-in "
        f"guard: {options.guard_ms:.0f} ms per check; {options.rounds} rounds per row",
        flush=True,
    )
    with standins.running():
        direct = {c: asyncio.run(measure(standins.llm_url, c, options.rounds)) for c in (1, 16)}
        for variant in VARIANTS:
            chunk_words = round(variant.window_chars / chars_per_word)
            work = Path(tempfile.mkdtemp(prefix="rsafe-bench-nemo-"))
            process, url = start_nemo(rails_config(standins, variant, chunk_words), work)
            standins.reset_counts()
            server = psutil.Process(process.pid)
            cpu_at_start = sum(server.cpu_times()[:2])  # after imports (config: 1st request)
            try:
                rows: list[dict[str, Any]] = [
                    dict(asyncio.run(measure(url, clients, options.rounds))) for clients in (1, 16)
                ]
                cpu_per_reply = (sum(server.cpu_times()[:2]) - cpu_at_start) / replies_per_variant
            finally:
                stop(process)
            whole = sum(1 for text in standins.output_checks if text.strip() == reply)
            chunk_checks = len(standins.output_checks) - whole
            for clients, row in zip((1, 16), rows, strict=True):
                base = direct[clients]
                row.update(
                    variant=variant.name,
                    clients=clients,
                    chunk_size=chunk_words + CONTEXT_WORDS,
                    context_size=CONTEXT_WORDS,
                    stream_first=variant.stream_first,
                    input_rail=variant.input_rail,
                    added_ttft_p50_ms=row["ttft_p50_ms"] - base["ttft_p50_ms"],
                    added_total_p50_ms=row["total_p50_ms"] - base["total_p50_ms"],
                    direct_ttft_p50_ms=base["ttft_p50_ms"],
                    direct_total_p50_ms=base["total_p50_ms"],
                    checks_per_reply=chunk_checks / replies_per_variant,
                    whole_reply_checks_per_reply=whole / replies_per_variant,
                    input_checks_per_reply=standins.input_checks / replies_per_variant,
                    nemo_cpu_ms_per_reply=cpu_per_reply * 1000,
                )
                # It must really stream, and really judge chunk by chunk.
                assert row["ttft_p50_ms"] < row["total_p50_ms"], f"{variant.name}: not streamed"
                results.append(row)
            assert chunk_checks >= 2 * replies_per_variant, f"{variant.name}: not chunk by chunk"
            print(f"done: {variant.name} (chunk_size {chunk_words + CONTEXT_WORDS}, "
                  f"context_size {CONTEXT_WORDS})", flush=True)  # fmt: skip
    print_table(results)
    print("checks/reply: output checks on chunks; besides them, per reply: "
          + "; ".join(f"{row['variant']}: {row['whole_reply_checks_per_reply']:.1f} on the whole "
                      f"reply, {row['input_checks_per_reply']:.1f} input, NeMo server CPU "
                      f"{row['nemo_cpu_ms_per_reply']:.0f} ms"
                      for row in results[::2]))  # fmt: skip
    options.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "nemoguardrails": version,
        "options": {**vars(options), "out": str(options.out)},
        "results": results,
        "loadavg_at_end": os.getloadavg(),
    }
    options.out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    load = os.getloadavg()
    print(f"load average at the end (the machine is shared): {load[0]:.1f} / {load[1]:.1f} / "
          f"{load[2]:.1f}; written: {options.out}")  # fmt: skip


if __name__ == "__main__":
    main()
