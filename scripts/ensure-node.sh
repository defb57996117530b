#!/usr/bin/env bash
# Installs Node.js and npm, which run SAP's official JavaScript SDK against the local AI Core
# (tests/integration/test_aicore_local_js_sdk.py). No-op when node and npm are present.
set -euo pipefail
exec "$(dirname "$0")/ensure-debian.sh" node,npm nodejs npm
