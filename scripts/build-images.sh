#!/usr/bin/env bash
# Builds the two images with podman (no Docker engine here, docs/images.md):
#   serving   $SERVING_IMAGE  (localhost/embedding-infinity:dev) from image/Dockerfile
#   operator  $OPERATOR_IMAGE (localhost/embedding-operator:dev)  from Dockerfile.operator
# A build is skipped when the image already carries the sha256 of its inputs (Dockerfile, build
# context files, lock, base image id) in its `embeddings.ai/inputs-sha256` label, so only the first
# run on a machine pays. The serving build installs from the wheelhouse that
# scripts/ensure-infinity-venv.sh keeps, so torch is downloaded once per machine, not per build.
#
#   scripts/build-images.sh [serving] [operator] [--force]   build (default: both); prints the names
#   scripts/build-images.sh --relock [serving] [operator]    regenerate the locks with sha256 hashes
#
# Env: SERVING_IMAGE, OPERATOR_IMAGE, BUILD_ISOLATION (chroot; the default OCI isolation fails on
# this kernel's cgroup setup), LOG_DIR (.local/logs: full build logs), HOST_CA_BUNDLE (/etc/ssl/certs/ca-certificates.crt; mounted for
# pip during the build only, never copied into an image), EMBEDDING_OPERATOR_CACHE.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVING_IMAGE="${SERVING_IMAGE:-localhost/embedding-infinity:dev}"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-localhost/embedding-operator:dev}"
BUILD_ISOLATION="${BUILD_ISOLATION:-chroot}"
HOST_CA_BUNDLE="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
BASE_IMAGE=docker.io/library/debian:bookworm-slim
LABEL=embeddings.ai/inputs-sha256
LOG_DIR="${LOG_DIR:-$ROOT/.local/logs}"

log() { printf 'build-images: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

PODMAN=(podman)
[ "$(id -u)" -eq 0 ] || PODMAN=(sudo podman) # rootful: the images are shared with root's tests

relock=0
force=0
targets=()
for arg in "$@"; do
    case "$arg" in
        serving | operator) targets+=("$arg") ;;
        --force) force=1 ;;
        --relock) relock=1 ;;
        *) die "unknown argument '$arg': use [serving] [operator] [--force] or --relock" ;;
    esac
done
[ "${#targets[@]}" -gt 0 ] || targets=(serving operator)

# --- locks ---------------------------------------------------------------------------------
# write_lock HEADER_FILE PIP_FREEZE_FILE WHEEL_DIR OUT: the pins, each with the sha256 of the one
# wheel pip downloaded for it (linux x86_64, CPython 3.11: the images' platform).
write_lock() {
    python3 - "$@" <<'EOF'
import hashlib, pathlib, re, sys

header, freeze, wheels, out = sys.argv[1:]
norm = lambda s: re.sub(r"[-_.]+", "_", s).lower()
by_key = {}
for whl in pathlib.Path(wheels).glob("*.whl"):
    name, version = whl.name.split("-")[:2]
    by_key.setdefault((norm(name), version), []).append(whl)
lines = [pathlib.Path(header).read_text().rstrip("\n")]
for pin in sorted(pathlib.Path(freeze).read_text().split(), key=str.lower):
    name, version = pin.split("==")
    files = by_key.get((norm(name), version))
    if not files or len(files) != 1:
        sys.exit(f"no single wheel for {pin} in {wheels}: {files}")
    digest = hashlib.sha256(files[0].read_bytes()).hexdigest()
    lines.append(f"{pin} \\\n    --hash=sha256:{digest}")
pathlib.Path(out).write_text("\n".join(lines) + "\n")
EOF
}

# relock NAME LOCK HEADER REQUIREMENTS...: resolve REQUIREMENTS in a fresh Python 3.11 venv, then
# write LOCK with every installed distribution pinned and hashed.
relock_one() {
    local lock=$1 header=$2
    shift 2
    local tmp
    tmp=$(mktemp -d)
    # shellcheck disable=SC2064 # expand now: tmp is local
    trap "rm -rf '$tmp'" RETURN
    python3.11 -m venv "$tmp/venv"
    # NB: without the venv's own setuptools, `freeze --all` lists it only if something needs it
    # (torch does: setuptools>=77), and then at the version the resolver chose.
    "$tmp/venv/bin/pip" uninstall --quiet --yes setuptools >&2
    "$tmp/venv/bin/pip" install --quiet --no-cache-dir "$@" >&2
    "$tmp/venv/bin/pip" check >&2
    "$tmp/venv/bin/pip" freeze --all --exclude pip >"$tmp/freeze"
    "$tmp/venv/bin/pip" download --quiet --no-deps --only-binary :all: -r "$tmp/freeze" -d "$tmp/wheels" >&2
    write_lock "$header" "$tmp/freeze" "$tmp/wheels" "$lock"
    log "wrote $lock ($(wc -l <"$tmp/freeze") pins)"
}

if [ "$relock" = 1 ]; then
    for target in "${targets[@]}"; do
        header=$(mktemp)
        case "$target" in
            serving)
                sed -n '/^--only-binary/q;p' "$ROOT/image/requirements.txt" >"$header"
                echo "--only-binary :all:" >>"$header"
                relock_one "$ROOT/image/requirements.txt" "$header" -r "$ROOT/image/requirements.in"
                ;;
            operator)
                sed -n '/^--only-binary/q;p' "$ROOT/image/requirements-operator.txt" >"$header"
                echo "--only-binary :all:" >>"$header"
                mapfile -t deps < <(python3 -c 'import tomllib, sys
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
                    "$ROOT/pyproject.toml")
                relock_one "$ROOT/image/requirements-operator.txt" "$header" "${deps[@]}"
                ;;
        esac
        rm -f "$header"
    done
    exit 0
fi

# --- builds --------------------------------------------------------------------------------
# NB: test sessions of several engineers may ask for the same image at once; one builds, the
# others wait and then find it up to date.
CACHE="${EMBEDDING_OPERATOR_CACHE:-$HOME/.cache/embedding-operator}"
mkdir -p "$CACHE"
exec 9>"$CACHE/.build-images.flock"
flock 9
"$ROOT/scripts/ensure-podman.sh"

# inputs_hash FILE...: one sha256 over the names and contents of FILES plus the base image id.
inputs_hash() {
    {
        (cd "$ROOT" && sha256sum "$@")
        "${PODMAN[@]}" image inspect --format '{{.Id}}' "$BASE_IMAGE"
    } | sha256sum | cut -d' ' -f1
}

# build NAME IMAGE HASH PODMAN_BUILD_ARGS...: build unless IMAGE already has HASH in its label.
build() {
    local name=$1 image=$2 hash=$3
    shift 3
    local have old start
    have=$("${PODMAN[@]}" image inspect --format "{{index .Labels \"$LABEL\"}}" "$image" 2>/dev/null || true)
    if [ "$force" = 0 ] && [ "$have" = "$hash" ]; then
        log "$name image $image is up to date (inputs $hash)"
        return
    fi
    old=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    log "building $name image $image"
    start=$(date +%s)
    local ca=()
    if [ -f "$HOST_CA_BUNDLE" ]; then
        # NB: only this build sees the host's CA bundle (pip behind a TLS-inspecting proxy); the
        # image never contains it, so on an ordinary CI runner nothing changes.
        ca=(-v "$HOST_CA_BUNDLE:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
    fi
    local build_log="$LOG_DIR/build-$name-image.log"
    mkdir -p "$LOG_DIR"
    if ! "${PODMAN[@]}" build --isolation="$BUILD_ISOLATION" --network=host --label "$LABEL=$hash" \
        "${ca[@]}" -t "$image" "$@" >"$build_log" 2>&1; then
        tail -n 40 "$build_log" >&2
        die "building $name image $image failed (last lines above; full log $build_log)"
    fi
    log "built $name image $image in $(($(date +%s) - start)) s (log $build_log)"
    # The previous build of this tag is now untagged; drop it instead of leaking gigabytes.
    if [ -n "$old" ] && [ "$old" != "$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$image")" ] &&
        [ -z "$("${PODMAN[@]}" image inspect --format '{{join .RepoTags ","}}' "$old" 2>/dev/null)" ]; then
        "${PODMAN[@]}" rmi "$old" >/dev/null 2>&1 || true
    fi
}

for target in "${targets[@]}"; do
    case "$target" in
        serving)
            wheelhouse=$("$ROOT/scripts/ensure-infinity-venv.sh" --wheelhouse)
            hash=$(inputs_hash image/Dockerfile image/run.sh image/serve.py image/requirements.txt)
            build serving "$SERVING_IMAGE" "$hash" \
                -v "$wheelhouse:/wheels:ro" --build-arg WHEELHOUSE=/wheels \
                -f "$ROOT/image/Dockerfile" "$ROOT/image"
            echo "$SERVING_IMAGE"
            ;;
        operator)
            # Exactly the files the build context keeps (.dockerignore), so a change anywhere else
            # in the repo does not trigger a rebuild.
            mapfile -t files < <(cd "$ROOT" && find operator/embedding_operator -type f \
                ! -path '*/__pycache__/*' ! -name '*.pyc' | LC_ALL=C sort)
            [ ! -f "$ROOT/README.md" ] || files+=(README.md)
            hash=$(inputs_hash Dockerfile.operator .dockerignore pyproject.toml \
                image/requirements-operator.txt "${files[@]}")
            build operator "$OPERATOR_IMAGE" "$hash" -f "$ROOT/Dockerfile.operator" "$ROOT"
            # Each rebuild leaves its build stage behind untagged; keep the newest (the layer
            # cache of the next build), drop the rest.
            mapfile -t stale < <("${PODMAN[@]}" images --filter dangling=true \
                --filter label=embeddings.ai/stage=operator-build --format '{{.ID}}' | tail -n +2)
            [ "${#stale[@]}" -eq 0 ] || "${PODMAN[@]}" rmi "${stale[@]}" >/dev/null 2>&1 || true
            echo "$OPERATOR_IMAGE"
            ;;
    esac
done
