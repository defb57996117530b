#!/usr/bin/env bash
# Installs the rootful container toolchain (podman, buildah, runc, debootstrap) and makes the
# base image `docker.io/library/debian:bookworm-slim` locally, because no container registry is
# reachable from these machines (docs/images.md). Idempotent and cheap when everything is there:
# no apt call when the tools exist, no debootstrap when the base image (or its cached rootfs
# tarball under $EMBEDDING_OPERATOR_CACHE/podman) exists.
#
# Env: EMBEDDING_OPERATOR_CACHE (default ~/.cache/embedding-operator), DEBIAN_MIRROR and
# DEBIAN_SECURITY_MIRROR (default: the mirrors in this machine's apt sources), BASE_IMAGE (default
# docker.io/library/debian:bookworm-slim).
set -euo pipefail

CACHE="${EMBEDDING_OPERATOR_CACHE:-$HOME/.cache/embedding-operator}/podman"
BASE_IMAGE="${BASE_IMAGE:-docker.io/library/debian:bookworm-slim}"
SUITE=bookworm
# Bump RECIPE when the rootfs recipe below changes: a base image or cached tarball made by an older
# recipe is then rebuilt.
RECIPE=3
ROOTFS_TAR="$CACHE/debian-$SUITE-minbase-rootfs-r$RECIPE.tar"

log() { printf 'ensure-podman: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: run as root to install podman"
    SUDO=(sudo)
fi

# 1. Tools. Package names equal command names; only call apt when one is missing.
missing=()
for tool in podman buildah runc debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} with apt-get"
    # NB: other engineers/CI steps may hold the dpkg lock; wait for it instead of failing.
    apt_opts=(-o DPkg::Lock::Timeout=600 -q)
    "${SUDO[@]}" apt-get "${apt_opts[@]}" update >/dev/null
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get "${apt_opts[@]}" install -y podman buildah runc debootstrap >/dev/null
fi

# 2. Base image, made from Debian packages with debootstrap (the same packages the official slim
# image is built from) and imported under the standard name so `FROM debian:bookworm-slim` works.
recipe=$("${SUDO[@]}" podman image inspect --format '{{index .Labels "embeddings.ai/base-recipe"}}' \
    "$BASE_IMAGE" 2>/dev/null || true)
if [ "$recipe" = "$RECIPE" ]; then
    log "base image $BASE_IMAGE present"
    exit 0
fi

# apt_uri SUFFIX: the first URI in this machine's apt sources whose path ends in SUFFIX (deb822
# `URIs:` lines first, then one-line `deb URI suite` lines).
apt_uri() {
    local uri
    uri=$(
        {
            grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i = 2; i <= NF; i++) print $i}'
            grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
                sed -E 's/^deb (\[[^]]*\] )?//' | awk '{print $1}'
        } | grep -E "$1/?\$" | head -n1
    )
    echo "${uri%/}"
}

if [ ! -s "$ROOTFS_TAR" ]; then
    mirror=${DEBIAN_MIRROR:-$(apt_uri /debian)}
    [ -n "$mirror" ] || die "no Debian mirror in /etc/apt/sources*: set DEBIAN_MIRROR=<mirror URL>"
    security=${DEBIAN_SECURITY_MIRROR:-$(apt_uri /debian-security)}
    log "debootstrap $SUITE (minbase) from $mirror"
    mkdir -p "$CACHE"
    work=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    trap '"${SUDO[@]}" rm -rf "$work"' EXIT
    "${SUDO[@]}" debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
        { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
    # The same apt sources as the official image (so image builds get point and security updates).
    "${SUDO[@]}" rm -f "$work/rootfs/etc/apt/sources.list"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$mirror" "$SUITE" "$SUITE"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        if [ -n "$security" ]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$security" "$SUITE"
            printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        else
            log "WARNING: no Debian security mirror in /etc/apt/sources*: the base image gets no security suite"
        fi
    } | "${SUDO[@]}" tee "$work/rootfs/etc/apt/sources.list.d/debian.sources" >/dev/null
    # Slim it like the official slim image: apt keeps no downloaded debs or caches after an
    # install, dpkg skips docs/man pages/locales in every later `apt-get install`, and the rootfs
    # itself has none of them (copyright files stay).
    r="$work/rootfs"
    "${SUDO[@]}" tee "$r/etc/apt/apt.conf.d/docker-clean" >/dev/null <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
    echo 'Acquire::Languages "none";' | "${SUDO[@]}" tee "$r/etc/apt/apt.conf.d/docker-no-languages" >/dev/null
    echo 'Apt::AutoRemove::SuggestsImportant "false";' |
        "${SUDO[@]}" tee "$r/etc/apt/apt.conf.d/docker-autoremove-suggests" >/dev/null
    "${SUDO[@]}" tee "$r/etc/dpkg/dpkg.cfg.d/docker-slim" >/dev/null <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
DPKG
    "${SUDO[@]}" find "$r/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
    "${SUDO[@]}" find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
    "${SUDO[@]}" rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin \
        "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* "$r"/usr/share/lintian/* \
        "$r"/usr/share/groff/*
    "${SUDO[@]}" tar -C "$work/rootfs" --numeric-owner -cf "$ROOTFS_TAR.tmp" .
    mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
fi

old=$("${SUDO[@]}" podman image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
log "importing $ROOTFS_TAR as $BASE_IMAGE"
"${SUDO[@]}" podman import --quiet --change 'CMD ["bash"]' \
    --change "LABEL embeddings.ai/base-recipe=$RECIPE" "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
# An image made by an older recipe is now untagged: drop it (images built on it keep their layers).
[ -z "$old" ] || "${SUDO[@]}" podman rmi "$old" >/dev/null 2>&1 || true
log "base image $BASE_IMAGE ready"
