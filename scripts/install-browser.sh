#!/usr/bin/env bash
# Install what the playground's browser tests (tests/playground, marked e2e) need, idempotently:
#
#   chromium, chromium-driver  Debian packages (/usr/bin/chromium, /usr/bin/chromedriver);
#                              skipped when both binaries already exist
#   selenium                   checked only: a dev pin of pyproject.toml, installed by scripts/setup.sh
#
# The tests pass the chromedriver path explicitly and set SE_OFFLINE=true, so selenium-manager never
# downloads a browser or a driver. Works as root (or with sudo) on Debian 12.
set -euo pipefail

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
# selenium is a dev pin of pyproject.toml (scripts/setup.sh installs it): one place for its version.
if ! "${VENV}/bin/python" -c 'import selenium' 2>/dev/null; then
  log "selenium is missing from ${VENV}: run scripts/setup.sh (it installs the dev pins)"
  exit 1
fi
