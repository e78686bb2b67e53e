#!/usr/bin/env bash
# Installs what the project needs on a fresh machine, then the Python workspace; safe to run again.
#   - uv (from PyPI) to manage the workspace and its lockfile
#   - Java and Maven for the local Kafka broker, through apt when missing and we are root
#   - Postgres 15 is installed on demand by `python -m dealreg_devstack up` (same rule)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -m uv --version >/dev/null 2>&1; then
  echo "bootstrap: installing uv from PyPI" >&2
  "$PY" -m pip install --quiet "uv>=0.13,<0.14"
fi

missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing ${missing[*]} with apt" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
  else
    echo "bootstrap: please install ${missing[*]} (needed for the local Kafka broker)" >&2
    exit 1
  fi
fi

"$PY" -m uv sync --frozen --quiet
