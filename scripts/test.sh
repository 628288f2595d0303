#!/usr/bin/env bash
# Fresh machine -> the whole test suite: Python deps (runtime, train, dashboard, dev),
# Debian's headless Chromium for the browser test, the ImageNet weights in the Keras cache.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q chromium chromium-driver >/dev/null
fi
bash scripts/setup.sh "train,dashboard,dev"
.venv/bin/python -m pytest -q -rs "$@"
