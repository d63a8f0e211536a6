#!/usr/bin/env bash
# Static checks of the deployment files; no Docker engine and no cluster needed.
#   helm lint --strict + helm template | kubernetes-validate (default values and every example values file)
#   hadolint on every Dockerfile, docker-compose config, promtool on the Prometheus config and alert rules.
# Tools come from scripts/install-deploy-tools.sh (run first, idempotent). Exits non-zero on any failure.
# The ServiceMonitor / PrometheusRule CRDs have no offline schema (kubernetes-validate only warns):
# tests/deploy/test_chart.py checks them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
"${ROOT}/scripts/install-deploy-tools.sh"
BIN="${ROOT}/.cache/tools/bin"
export PATH="${BIN}:${PATH}"
K8S_VERSION="${K8S_VERSION:-1.33.0}"
CHART="helm/rsafe-gateway"

step() { printf '\n==> %s\n' "$*"; }

for values in "" "${CHART}"/examples/*.yaml; do
  args=()
  label="default values"
  if [ -n "${values}" ]; then args=(--values "${values}"); label="${values}"; fi
  step "helm lint --strict (${label})"
  helm lint --strict "${CHART}" "${args[@]}"
  step "helm template | kubernetes-validate -k ${K8S_VERSION} --strict (${label})"
  helm template rsafe "${CHART}" --namespace rsafe "${args[@]}" \
    | kubernetes-validate -k "${K8S_VERSION}" --strict -
done

step "hadolint"
mapfile -t dockerfiles < <(find "${ROOT}" \( -path "${ROOT}/.git" -o -path "${ROOT}/.cache" -o -path "${ROOT}/.venv*" -o -name node_modules \) -prune \
  -o -type f \( -name 'Dockerfile' -o -name '*.Dockerfile' -o -name 'Dockerfile.*' \) ! -name '*.dockerignore' -print | sort)
if [ "${#dockerfiles[@]}" -eq 0 ]; then echo "no Dockerfile found" >&2; exit 1; fi
for dockerfile in "${dockerfiles[@]}"; do
  echo "${dockerfile#"${ROOT}"/}"
  hadolint --failure-threshold error "${dockerfile}"
done

step "docker-compose config"
docker-compose -f docker-compose.yml config -q
echo "docker-compose.yml: valid"
docker-compose -f docker-compose.yml -f docker-compose.cpu.yml config -q
echo "docker-compose.yml + docker-compose.cpu.yml: valid"

step "promtool check config (compose layout: rules mounted under rules/)"
layout="$(mktemp -d)"
trap 'rm -rf "${layout}"' EXIT
mkdir -p "${layout}/rules"
cp docker/prometheus/prometheus.yml "${layout}/prometheus.yml"
cp "${CHART}/files/prometheus-rules.yml" "${layout}/rules/rsafe-gateway.yml"
promtool check config "${layout}/prometheus.yml"

step "promtool check rules"
promtool check rules "${CHART}/files/prometheus-rules.yml"

printf '\ncheck-deploy: all checks passed\n'
