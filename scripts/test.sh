#!/usr/bin/env bash
# Fresh machine -> the whole test suite: Debian's headless Chromium for the browser test (Playwright
# drives /usr/bin/chromium; its own browser download is impossible offline), the Python deps (runtime,
# train, dashboard, dev). Training code copies the ImageNet weights from ../shared/weights into the
# Keras cache when it first needs them (training/backbone.py).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >/dev/null
  $sudo apt-get install -y -q chromium >/dev/null
fi
bash scripts/setup.sh "train,dashboard,dev"
.venv/bin/python -m pytest -q -rs "$@"
