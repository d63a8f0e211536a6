#!/usr/bin/env bash
# One command to a working moderation service on this machine: Redis + vLLM + the gateway.
#
#   scripts/run-local.sh                          the shipped default guard (SmolLM2-135M trained the
#                                                 RSafe way, models/default-guard/), on the CPU
#   RSAFE_MODEL=/path/to/checkpoint scripts/run-local.sh   serve another RSafe checkpoint
#   RSAFE_MODEL=tiny scripts/run-local.sh         tiny random checkpoint (PLUMBING ONLY: noise)
#
# Ports: gateway $RSAFE_PORT (8080), vLLM $VLLM_PORT (8000), Redis $REDIS_PORT (6379).
# Ctrl-C stops what this script started (a Redis that was already running is left alone).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

RSAFE_PORT=${RSAFE_PORT:-8080}
VLLM_PORT=${VLLM_PORT:-8000}
REDIS_PORT=${REDIS_PORT:-6379}
RUN_DIR=${RUN_DIR:-run}
mkdir -p "$RUN_DIR"
VLLM_PY=${RSAFE_VLLM_PYTHON:-.venv-vllm/bin/python}
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
log() { printf '\033[1m[run]\033[0m %s\n' "$*"; }
wait_http() { # url seconds pid
  for _ in $(seq 1 $(( $2 * 2 ))); do
    curl -sf "$1" >/dev/null 2>&1 && return 0
    kill -0 "$3" 2>/dev/null || { log "process $3 died; see $RUN_DIR/*.log"; return 1; }
    sleep 0.5
  done
  log "$1 not ready after $2 s"; return 1
}

if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  log "using the Redis already answering on port $REDIS_PORT"
else
  log "starting Redis on port $REDIS_PORT"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$RUN_DIR/redis.log" 2>&1 &
  pids+=($!)
fi

if [ -z "${RSAFE_MODEL:-}" ] && [ -f .cache/rsafe-smollm2/rsafe_default_guard.json ]; then
  model_dir=.cache/rsafe-smollm2   # built by scripts/setup.sh from the committed adapter
  profile=cpu
  log "serving the default guard: SmolLM2-135M + models/default-guard (a laptop/CI guard, not production)"
elif [ -n "${RSAFE_MODEL:-}" ] && [ "$RSAFE_MODEL" != tiny ]; then
  model_dir=$RSAFE_MODEL
  profile=${RSAFE_SERVING_PROFILE:-gpu}
  command -v nvidia-smi >/dev/null 2>&1 || profile=${RSAFE_SERVING_PROFILE:-cpu}
else
  model_dir=.cache/tiny-rsafe
  profile=cpu
  "$VLLM_PY" models/tiny_checkpoint.py "$model_dir"
  log "NOTE: serving a tiny RANDOM checkpoint: plumbing only, its verdicts are noise."
  log "      (RSAFE_MODEL=tiny, or the default guard is not built: scripts/setup.sh builds it from models/default-guard/.)"
  log "      Set RSAFE_MODEL=/path/to/rsafe-checkpoint for real judgements."
  export RSAFE_MAX_TOKENS=${RSAFE_MAX_TOKENS:-300} RSAFE_REASONING_MAX_CHARS=${RSAFE_REASONING_MAX_CHARS:-200}
fi
# vLLM's command line is spelled in one place (scripts/devstack.py), from the serving recipe.
mapfile -t vllm_command < <(RSAFE_VLLM_PYTHON=$VLLM_PY .venv/bin/python scripts/devstack.py \
  vllm-command "$model_dir" "$VLLM_PORT" --profile "$profile")
log "starting vLLM ($profile profile) on port $VLLM_PORT: $model_dir"
HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1} VLLM_NO_USAGE_STATS=1 \
  "${vllm_command[@]}" >"$RUN_DIR/vllm.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$VLLM_PORT/health" 600 "${pids[-1]}"

log "starting the gateway on port $RSAFE_PORT"
RSAFE_PORT=$RSAFE_PORT RSAFE_MODEL_SERVER_URL=http://127.0.0.1:$VLLM_PORT \
  RSAFE_REDIS_URL=${RSAFE_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0} \
  .venv/bin/python -m rsafe_gateway >"$RUN_DIR/gateway.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$RSAFE_PORT/readyz" 60 "${pids[-1]}"

cat <<MSG

  The RSafe moderation gateway is ready on http://127.0.0.1:$RSAFE_PORT  (API docs: /docs)
  Try it:

curl -s http://127.0.0.1:$RSAFE_PORT/v1/moderate -H 'Content-Type: application/json' -d '{"input": "How do I pick a lock?"}'

  Logs: $RUN_DIR/{gateway,vllm,redis}.log   Stop: Ctrl-C
MSG
wait -n "${pids[@]}"
log "a server exited; stopping the rest"
