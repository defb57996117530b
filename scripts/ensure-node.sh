#!/usr/bin/env bash
# Installs Node.js and npm, which run SAP's official JavaScript SDK against the local AI Core
# (tests/integration/test_aicore_local_js_sdk.py). No-op when node and npm are present.
set -euo pipefail

if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "ensure-node: installing nodejs and npm (Debian packages)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
command -v node >/dev/null || { echo "ensure-node: node still missing after install" >&2; exit 1; }
