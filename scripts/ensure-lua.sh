#!/usr/bin/env bash
# Installs the Lua 5.1 interpreter that tests/unit/test_argocd_health.py runs the Argo CD health
# check with (Argo CD itself runs gopher-lua, which follows Lua 5.1). No-op when lua5.1 is present.
set -euo pipefail
exec "$(dirname "$0")/ensure-debian.sh" lua5.1 lua5.1
