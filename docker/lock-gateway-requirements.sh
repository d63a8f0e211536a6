#!/usr/bin/env bash
# Regenerate docker/gateway-requirements.lock from the pins in pyproject.toml: resolves the full
# dependency set with pip (no install) and writes one `name==version` a line. Run with CPython 3.11,
# the image's Python: `docker/lock-gateway-requirements.sh [python]`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${1:-python3.11}"
report="$(mktemp)"
trap 'rm -f "${report}"' EXIT
"${PYTHON}" -m pip install --quiet --disable-pip-version-check --dry-run --ignore-installed \
  --only-binary=:all: --report "${report}" "${ROOT}" 2>/dev/null \
  || "${PYTHON}" -m pip install --quiet --disable-pip-version-check --dry-run --ignore-installed \
       --report "${report}" "${ROOT}"
{
  sed -n '1,/^$/p' "${ROOT}/docker/gateway-requirements.lock"
  "${PYTHON}" - "${report}" <<'PY'
import json, sys
installs = json.load(open(sys.argv[1], encoding="utf-8"))["install"]
pins = sorted(
    (i["metadata"]["name"], i["metadata"]["version"])
    for i in installs
    if i["metadata"]["name"] != "rsafe-gateway"
)
for name, version in sorted(pins, key=lambda p: p[0].lower()):
    print(f"{name}=={version}")
PY
} > "${ROOT}/docker/gateway-requirements.lock.new"
mv "${ROOT}/docker/gateway-requirements.lock.new" "${ROOT}/docker/gateway-requirements.lock"
echo "wrote docker/gateway-requirements.lock"
