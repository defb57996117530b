#!/usr/bin/env bash
# Installs redis-server, the cache Argo CD's application-controller and repo-server share; the
# GitOps tests (tests/fixtures/argocd.py) start a private one on a loopback port and never use
# the package's own service. No-op when redis-server is present.
set -euo pipefail
exec "$(dirname "$0")/ensure-debian.sh" redis-server redis-server
