#!/usr/bin/env bash
# Creates (or reuses) the local infinity venv from the image's lock, image/requirements.txt, so the
# local AI Core and the tests serve with exactly the packages the serving image has.
#
#   scripts/ensure-infinity-venv.sh               ensure the venv; print its path on stdout
#   scripts/ensure-infinity-venv.sh --wheelhouse  ensure the wheelhouse only; print its path
#   scripts/ensure-infinity-venv.sh --check       exit 0 if the venv is current, 1 if not (no changes)
#
# The venv is keyed by the sha256 of the lock, kept in a stamp file inside it: when the stamp
# matches, this costs no pip call. Wheels are downloaded once into a wheelhouse that the image
# build (scripts/build-images.sh) reuses, so a machine downloads torch only once. A venv without a
# stamp whose installed packages equal the lock exactly is adopted (stamped) rather than rebuilt.
#
# Env: EMBEDDING_OPERATOR_CACHE (default ~/.cache/embedding-operator), INFINITY_VENV (default
# $EMBEDDING_OPERATOR_CACHE/infinity-venv), INFINITY_WHEELHOUSE (default
# $EMBEDDING_OPERATOR_CACHE/wheelhouse/infinity), PYTHON (default python3.11, then python3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCK="$ROOT/image/requirements.txt"
CACHE="${EMBEDDING_OPERATOR_CACHE:-$HOME/.cache/embedding-operator}"
VENV="${INFINITY_VENV:-$CACHE/infinity-venv}"
WHEELHOUSE="${INFINITY_WHEELHOUSE:-$CACHE/wheelhouse/infinity}"
STAMP_NAME=.embedding-operator-lock.sha256

log() { printf 'ensure-infinity-venv: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mode=venv
case "${1:-}" in
    "") ;;
    --wheelhouse) mode=wheelhouse ;;
    --check) mode=check ;;
    *) die "unknown argument '$1': use no argument, --wheelhouse or --check" ;;
esac

[ -f "$LOCK" ] || die "lock file $LOCK is missing"
lock_hash=$(sha256sum "$LOCK" | cut -d' ' -f1)

venv_current() {
    [ "$(cat "$VENV/$STAMP_NAME" 2>/dev/null)" = "$lock_hash" ] && "$VENV/bin/python" -c '' 2>/dev/null
}

if [ "$mode" = check ]; then
    venv_current
    exit
fi
if [ "$mode" = venv ] && venv_current; then
    echo "$VENV"
    exit 0
fi

# Everything below may download gigabytes; serialise concurrent callers (make -j, parallel tests).
mkdir -p "$CACHE"
exec 9>"$CACHE/.infinity-venv.flock"
flock 9

python_bin() {
    local py="${PYTHON:-}"
    if [ -z "$py" ]; then
        py=$(command -v python3.11 || command -v python3 || true)
    fi
    [ -n "$py" ] || die "no python3 found: install Python 3.11 or set PYTHON=/path/to/python3.11"
    command -v "$py" >/dev/null || die "PYTHON=$py is not an executable: set PYTHON=/path/to/python3.11"
    # NB: the lock pins cp311 wheels, the same Python the serving image's Debian base has.
    "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
        die "$py is not Python 3.11 (the lock pins cp311 wheels): set PYTHON=/path/to/python3.11"
    echo "$py"
}

# Pins of the lock as sorted, normalised "name==version" lines (PEP 503 names).
normalise() {
    awk -F'==' '{ name = tolower($1); gsub(/[-_.]+/, "-", name); print name "==" $2 }' | LC_ALL=C sort
}
lock_pins() { grep -E '^[A-Za-z0-9]' "$LOCK" | sed -E 's/[[:space:]].*//' | normalise; }

ensure_wheelhouse() {
    if [ "$(cat "$WHEELHOUSE/$STAMP_NAME" 2>/dev/null)" = "$lock_hash" ]; then
        return
    fi
    local py
    py=$(python_bin)
    mkdir -p "$WHEELHOUSE"
    log "downloading the wheels of $LOCK into $WHEELHOUSE (several GB the first time; files already there are kept)"
    # NB: `pip download` keeps files already in the wheelhouse, so an interrupted run resumes.
    "$py" -m pip download --quiet --no-cache-dir --no-deps --only-binary :all: -r "$LOCK" -d "$WHEELHOUSE" >&2
    echo "$lock_hash" >"$WHEELHOUSE/$STAMP_NAME"
}

if [ "$mode" = wheelhouse ]; then
    ensure_wheelhouse
    echo "$WHEELHOUSE"
    exit 0
fi

# Another caller may have finished while we waited for the lock.
if venv_current; then
    echo "$VENV"
    exit 0
fi

# Adopt a venv installed by hand from the same requirements, if it matches the lock exactly.
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c '' 2>/dev/null; then
    # NB: --all: setuptools is a real runtime dependency (torch requires setuptools>=77).
    installed=$("$VENV/bin/python" -m pip freeze --all --exclude pip | normalise)
    if [ "$installed" = "$(lock_pins)" ] && "$VENV/bin/python" -m pip check >/dev/null; then
        log "existing $VENV matches the lock; stamping it"
        echo "$lock_hash" >"$VENV/$STAMP_NAME"
        echo "$VENV"
        exit 0
    fi
    log "existing $VENV differs from the lock; rebuilding it"
fi

ensure_wheelhouse
py=$(python_bin)
start=$(date +%s)
rm -rf "$VENV"
"$py" -m venv "$VENV"
# NB: --no-index --no-deps: only what the lock names, only from the wheelhouse; pip check then
# proves the lock is complete and consistent.
"$VENV/bin/python" -m pip install --quiet --no-index --no-deps --find-links "$WHEELHOUSE" \
    -r "$LOCK" >&2
"$VENV/bin/python" -m pip check >&2 || die "pip check failed: the lock $LOCK is inconsistent"
echo "$lock_hash" >"$VENV/$STAMP_NAME"
log "created $VENV in $(($(date +%s) - start)) s"
echo "$VENV"
