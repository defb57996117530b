#!/usr/bin/env bash
# Installs Debian packages unless the commands they provide are already on PATH.
# Usage: ensure-debian.sh COMMAND[,COMMAND...] PACKAGE...
#   e.g. ensure-debian.sh node,npm nodejs npm
set -euo pipefail

commands="$1"
shift
missing=0
for cmd in ${commands//,/ }; do
  command -v "$cmd" >/dev/null 2>&1 || missing=1
done
if [ "$missing" -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "ensure-debian: installing $* (Debian packages)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
for cmd in ${commands//,/ }; do
  command -v "$cmd" >/dev/null || { echo "ensure-debian: $cmd still missing after install" >&2; exit 1; }
done
