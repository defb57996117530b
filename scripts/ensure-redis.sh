#!/usr/bin/env bash
# Installs redis-server, the cache Argo CD's application-controller and repo-server share; the
# GitOps tests (tests/fixtures/argocd.py) start a private one on a loopback port. No-op when
# redis-server is present.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "ensure-redis: installing redis-server (Debian package)" >&2
$SUDO apt-get update -qq
# NB: the tests never use the package's own service (port 6379); they start a private server.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  redis-server >/dev/null
command -v redis-server >/dev/null || {
  echo "ensure-redis: redis-server still missing after install" >&2
  exit 1
}
