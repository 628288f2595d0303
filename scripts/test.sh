#!/usr/bin/env bash
# Fresh machine -> the whole test suite: Debian's headless Chromium for the browser test (Playwright
# drives /usr/bin/chromium; its own browser download is impossible offline), Debian's qemu-user for
# the cross-CPU test (the models and the self-test on an emulated AVX2 CPU without VNNI), the Python
# deps (runtime, train, dashboard, dev). Training code copies the ImageNet weights from ../shared/weights
# into the Keras cache when it first needs them (training/backbone.py).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
updated=""
apt_install() {  # apt_install PACKAGE: the package lists are fetched once
  if [ -z "$updated" ]; then $sudo apt-get update -q >/dev/null; updated=1; fi
  $sudo apt-get install -y -q "$1" >/dev/null
}
command -v chromium >/dev/null 2>&1 || apt_install chromium
# The cross-CPU test skips, saying why, where qemu-user cannot be installed (not an x86 Debian, say).
command -v qemu-x86_64 >/dev/null 2>&1 || apt_install qemu-user || echo "warning: qemu-user not installed" >&2
bash scripts/setup.sh "train,dashboard,dev"
.venv/bin/python -m pytest -q -rs --durations=15 "$@"  # the slowest tests listed: CI time is watched
