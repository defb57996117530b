#!/usr/bin/env bash
# Installs the Lua 5.1 interpreter that tests/unit/test_argocd_health.py runs the Argo CD health
# check with (Argo CD itself runs gopher-lua, which follows Lua 5.1). No-op when lua5.1 is present.
set -euo pipefail

if command -v lua5.1 >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "ensure-lua: installing lua5.1 (Debian package)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends lua5.1 >/dev/null
command -v lua5.1 >/dev/null || { echo "ensure-lua: lua5.1 still missing after install" >&2; exit 1; }
