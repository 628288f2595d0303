#!/usr/bin/env bash
# Create .venv with the given extras (idempotent). Usage: scripts/setup.sh "dashboard" | "train,dashboard,dev"
# Python 3.11 (pyproject.toml pins it: tensorflow 2.21 + tf2onnx 1.17 are known to work there).
# A .venv that already holds these extras for this pyproject.toml is left as it is, without asking the package
# index anything: an offline line PC restarts the dashboard with the same command (.venv/.steel-setup records
# what was installed).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dashboard}"
python="${PYTHON:-python3.11}"
stamp=".venv/.steel-setup"
pyproject="$(sha256sum pyproject.toml | cut -d' ' -f1)"
installed() {  # every extra asked for is recorded in the stamp, for this pyproject.toml
  [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$pyproject" ] || return 1
  local extra
  for extra in ${extras//,/ }; do
    grep -qx "$extra" <(tail -n +2 "$stamp") || return 1
  done
}
if installed; then
  exit 0
fi
if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: $python not found; install Python 3.11 (Debian: python3.11 python3.11-venv) or set PYTHON" >&2
  exit 2
fi
"$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${extras}]"
previous="$( { [ -f "$stamp" ] && [ "$(head -n 1 "$stamp")" = "$pyproject" ] && tail -n +2 "$stamp"; } || true)"
{ echo "$pyproject"; printf '%s\n' $previous ${extras//,/ } | sort -u; } > "$stamp"
