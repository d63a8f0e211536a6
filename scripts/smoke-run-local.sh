#!/usr/bin/env bash
# Proves the README's run command: start scripts/run-local.sh on spare ports, wait for the
# ready message, run the exact curl it prints, check the answer's shape, stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
export RSAFE_PORT=${RSAFE_PORT:-18080} VLLM_PORT=${VLLM_PORT:-18000} REDIS_PORT=${REDIS_PORT:-16379}
export RUN_DIR=${RUN_DIR:-run/smoke}
mkdir -p "$RUN_DIR"
out="$RUN_DIR/run-local.out"
setsid scripts/run-local.sh >"$out" 2>&1 &
runner=$!
trap 'kill -TERM -- -$runner 2>/dev/null || true; wait $runner 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  grep -q '^curl ' "$out" && break
  kill -0 "$runner" 2>/dev/null || { cat "$out"; echo "run-local.sh exited early"; exit 1; }
  sleep 0.5
done
printed=$(grep '^curl ' "$out") || { cat "$out"; echo "no curl line printed"; exit 1; }
echo "[smoke] running: $printed"
answer=$(bash -c "$printed")
echo "[smoke] answer: $answer"
# Serving the default guard (built from models/default-guard/): its reasoning must read as words,
# which the tiny random checkpoint's never does ("varsvarsvars...").
guard=0
grep -q 'serving the default guard' "$out" && guard=1
echo "$answer" | RSAFE_SMOKE_GUARD=$guard .venv/bin/python -c '
import json, os, re, sys
body = json.load(sys.stdin)
need = {"id", "verdict", "flagged", "categories", "reasoning", "policy", "model", "cached", "usage", "latency_ms"}
missing = need - set(body)
assert not missing, f"missing fields: {missing}"
assert body["verdict"] in {"safe", "unsafe", "undetermined"}
if os.environ["RSAFE_SMOKE_GUARD"] == "1":
    reasoning = body["reasoning"] or ""
    words = re.findall(r"[A-Za-z]{2,}", reasoning)
    assert len(words) >= 5 and len(set(words)) >= 4, f"unreadable reasoning: {reasoning!r}"
    assert body["verdict"] != "undetermined", body
    print("[smoke] default guard:", body["verdict"], "-", reasoning)
print("[smoke] contract-shaped answer: OK")
'
