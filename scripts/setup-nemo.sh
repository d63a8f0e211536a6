#!/usr/bin/env bash
# Prepare .venv-nemo: NeMo Guardrails (its OpenAI-compatible server), for the side-by-side streaming
# benchmark scripts/benchmark_nemo.py. Kept apart from .venv: the gateway does not depend on it.
# Pins: scripts/nemo-requirements.txt (the whole resolved set). Idempotent: a stamp (hash of this
# script and the pins) skips everything when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv-nemo
log() { printf '\033[1m[setup-nemo]\033[0m %s\n' "$*"; }

stamp=$(cat scripts/setup-nemo.sh scripts/nemo-requirements.txt | sha256sum | cut -d' ' -f1)
if [ -f "$VENV/.rsafe-nemo-stamp" ] && [ "$(cat "$VENV/.rsafe-nemo-stamp")" = "$stamp" ]; then
  log "ready (unchanged)"
  exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
log "nemoguardrails and its pinned dependencies (scripts/nemo-requirements.txt)"
# pipefail: pip's exit status survives the filter of its "Location ... is ignored" noise.
"$VENV/bin/pip" install -q --disable-pip-version-check -r scripts/nemo-requirements.txt 2>&1 \
  | { grep -v '^WARNING: Location' || true; }

"$VENV/bin/python" - <<'PY'
import importlib.metadata as metadata
import fastapi, uvicorn  # the server's dependencies
from nemoguardrails import RailsConfig  # noqa: F401
print(f"nemoguardrails {metadata.version('nemoguardrails')}, fastapi {fastapi.__version__}, "
      f"uvicorn {uvicorn.__version__}")
PY
echo "$stamp" > "$VENV/.rsafe-nemo-stamp"
log "ready: .venv/bin/python scripts/benchmark_nemo.py"
