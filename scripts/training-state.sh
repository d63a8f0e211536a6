#!/usr/bin/env bash
# Carry a training run across machines: a session's machine can stop mid-run and the next one starts
# from a clean clone, where the git-ignored artifacts/ is gone. `save` copies each stage's newest
# checkpoint (LoRA adapter, optimizer, scheduler, RNG and trainer state: ~20 MB) and its metrics into
# models/training-state/ (committed); `restore` puts them back under artifacts/ unless a newer
# checkpoint is already there. scripts/train-smollm2-cpu.sh restores before it resumes.
#   scripts/training-state.sh save|restore
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=artifacts/smollm2-rsafe
STATE=models/training-state
STAGES=(sft grpo round2/sft round2/grpo round2b/sft round3/sft round3/grpo round4/sft round4/grpo round4b/sft round4b/grpo round5/sft round5/grpo round6/sft round6/grpo round7/sft round7/grpo round8/grpo)
# Stages that write data, not weights: their JSONL files are carried as they are.
DATA_STAGES=(round8/pass-rates)
log() { printf '\033[1m[training-state]\033[0m %s\n' "$*"; }

newest() { # folder → its checkpoint-N with the highest N (empty: none)
  local name
  name=$(find "$1" -maxdepth 1 -type d -name 'checkpoint-*' -printf '%f\n' 2>/dev/null | sort -t- -k2 -n | tail -1)
  [ -z "$name" ] || echo "$1/$name"
}
step_of() { [ -n "$1" ] && echo "${1##*-}" || echo -1; }

save() {
  for stage in "${DATA_STAGES[@]}"; do
    compgen -G "$RUN/$stage/*.jsonl" >/dev/null || continue
    rm -rf "$STATE/$stage" && mkdir -p "$STATE/$stage"
    cp "$RUN/$stage"/*.jsonl "$STATE/$stage/"
    log "$stage: saved its data ($(du -sh "$STATE/$stage" | cut -f1))"
  done
  for stage in "${STAGES[@]}"; do
    # A finished stage (its adapter is written once, at the end) is carried as that adapter alone
    # (~7 MB): the next stage starts from it and nothing resumes the stage itself.
    if [ -f "$RUN/$stage/adapter/adapter_config.json" ]; then
      rm -rf "$STATE/$stage" && mkdir -p "$STATE/$stage"
      rsync -a --exclude tokenizer.json "$RUN/$stage/adapter" "$STATE/$stage/"
      cp "$RUN/$stage/metrics.jsonl" "$STATE/$stage/" 2>/dev/null || true
      log "$stage: saved its finished adapter ($(du -sh "$STATE/$stage" | cut -f1))"
      continue
    fi
    ckpt=$(newest "$RUN/$stage")
    [ -n "$ckpt" ] || continue
    rm -rf "$STATE/$stage" && mkdir -p "$STATE/$stage"
    # The tokenizer is rebuilt from the GGUF; a resume does not read it from the checkpoint.
    rsync -a --exclude tokenizer.json "$ckpt" "$STATE/$stage/"
    cp "$RUN/$stage/metrics.jsonl" "$STATE/$stage/" 2>/dev/null || true
    log "$stage: saved $(basename "$ckpt") ($(du -sh "$STATE/$stage" | cut -f1))"
  done
}

restore() {
  for stage in "${DATA_STAGES[@]}"; do
    compgen -G "$STATE/$stage/*.jsonl" >/dev/null || continue
    if compgen -G "$RUN/$stage/*.jsonl" >/dev/null; then
      log "$stage: its data is here already; kept"
    else
      mkdir -p "$RUN/$stage" && cp "$STATE/$stage"/*.jsonl "$RUN/$stage/"
      log "$stage: restored its data"
    fi
  done
  for stage in "${STAGES[@]}"; do
    if [ -f "$STATE/$stage/adapter/adapter_config.json" ]; then
      if [ -f "$RUN/$stage/adapter/adapter_config.json" ]; then
        log "$stage: finished here already; kept"
      else
        mkdir -p "$RUN/$stage"
        rsync -a "$STATE/$stage/adapter" "$RUN/$stage/"
        [ -f "$RUN/$stage/metrics.jsonl" ] || cp "$STATE/$stage/metrics.jsonl" "$RUN/$stage/" 2>/dev/null || true
        log "$stage: restored its finished adapter"
      fi
      continue
    fi
    saved=$(newest "$STATE/$stage")
    [ -n "$saved" ] || continue
    here=$(newest "$RUN/$stage")
    if [ "$(step_of "$here")" -ge "$(step_of "$saved")" ]; then
      log "$stage: $(basename "$here") here is as new as the saved one; kept"
      continue
    fi
    mkdir -p "$RUN/$stage"
    rsync -a "$saved" "$RUN/$stage/"
    if [ ! -f "$RUN/$stage/metrics.jsonl" ] && [ -f "$STATE/$stage/metrics.jsonl" ]; then
      cp "$STATE/$stage/metrics.jsonl" "$RUN/$stage/"
    fi
    log "$stage: restored $(basename "$saved")"
  done
}

case "${1:-}" in
  save) save ;;
  restore) restore ;;
  *) echo "usage: $0 save|restore" >&2; exit 2 ;;
esac
