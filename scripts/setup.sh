#!/usr/bin/env bash
# Create .venv with the given extras (idempotent). Usage: scripts/setup.sh "dashboard" | "train,dashboard,dev"
# Python 3.11 (pyproject.toml pins it: tensorflow 2.21 + tf2onnx 1.17 are known to work there).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dashboard}"
python="${PYTHON:-python3.11}"
if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: $python not found; install Python 3.11 (Debian: python3.11 python3.11-venv) or set PYTHON" >&2
  exit 2
fi
"$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${extras}]"
