#!/usr/bin/env bash
# Create .venv with the given extras (idempotent). Usage: scripts/setup.sh "dashboard" | "train,dashboard,dev"
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dashboard}"
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${extras}]"
