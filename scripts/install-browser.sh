#!/usr/bin/env bash
# Install what the playground's browser tests (tests/playground, marked e2e) need, idempotently:
#
#   chromium, chromium-driver  Debian packages (/usr/bin/chromium, /usr/bin/chromedriver);
#                              skipped when both binaries already exist
#   selenium                   PyPI, pinned below, into <repo>/.venv; skipped when that version is there
#
# The tests pass the chromedriver path explicitly and set SE_OFFLINE=true, so selenium-manager never
# downloads a browser or a driver. Works as root (or with sudo) on Debian 12.
set -euo pipefail

SELENIUM_VERSION="4.51.0"  # 4.52.0 needs certifi>=2026.10.23, not yet installable here

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROOT}/.venv"

log() { printf '[install-browser] %s\n' "$*" >&2; }

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  log "chromium and chromedriver present: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
else
  if ! command -v apt-get >/dev/null 2>&1; then
    log "need the Debian packages chromium and chromium-driver, but apt-get is not available"
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  log "apt-get install chromium chromium-driver"
  ${sudo} apt-get update -qq >/dev/null
  ${sudo} env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

if [ ! -x "${VENV}/bin/python" ]; then
  log "${VENV} is missing: run scripts/setup.sh first"
  exit 1
fi
installed="$("${VENV}/bin/python" -c 'import importlib.metadata as m; print(m.version("selenium"))' \
  2>/dev/null || true)"
if [ "${installed}" = "${SELENIUM_VERSION}" ]; then
  log "selenium ${SELENIUM_VERSION} present in ${VENV}"
else
  log "pip install selenium==${SELENIUM_VERSION} into ${VENV}"
  "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
    "selenium==${SELENIUM_VERSION}"
fi
