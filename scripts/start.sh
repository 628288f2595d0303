#!/usr/bin/env bash
# Fresh machine -> the operator dashboard on the committed default models, with the
# synthetic steel-strip source on the Live page (no camera and no data set needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dashboard
exec .venv/bin/python -m dashboard "$@"
