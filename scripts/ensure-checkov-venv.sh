#!/usr/bin/env bash
# Creates (or reuses) a pinned checkov in its own venv and prints the path of its `checkov`.
# checkov pulls in a large dependency tree (cloud SDKs, parsers), so it stays out of the dev
# extras; tests/integration/test_helm_chart.py scans the rendered install with it.
#
# Env: EMBEDDING_OPERATOR_CACHE (default ~/.cache/embedding-operator), PYTHON (default python3).
set -euo pipefail

VERSION=3.3.30
CACHE="${EMBEDDING_OPERATOR_CACHE:-$HOME/.cache/embedding-operator}"
VENV="$CACHE/checkov-$VERSION"

log() { printf 'ensure-checkov-venv: %s\n' "$*" >&2; }

if [ -x "$VENV/bin/checkov" ] && [ -f "$VENV/.complete" ]; then
    echo "$VENV/bin/checkov"
    exit 0
fi
mkdir -p "$CACHE"
exec 9>"$CACHE/.checkov-venv.flock"
flock 9
if [ -x "$VENV/bin/checkov" ] && [ -f "$VENV/.complete" ]; then
    echo "$VENV/bin/checkov"
    exit 0
fi
# NB: the marker file is written last, so a venv without it (an interrupted install) is redone.
rm -rf "$VENV"
log "installing checkov==$VERSION into $VENV (a few minutes the first time)"
"${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "checkov==$VERSION" >&2
"$VENV/bin/checkov" --version >/dev/null
touch "$VENV/.complete"
echo "$VENV/bin/checkov"
