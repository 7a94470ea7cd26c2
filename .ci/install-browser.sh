#!/usr/bin/env bash
# Install Debian's Chromium for the report's headless-browser tests (tests/integration/test_report_chromium.py).
# Idempotent: does nothing when chromium is already installed. Needs root (or sudo) and the Debian registry.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium
chromium --version
