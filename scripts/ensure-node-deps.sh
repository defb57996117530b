#!/usr/bin/env bash
# Installs the Debian packages the local node needs (docs/testcluster.md, node mode): runc (the OCI
# runtime containerd starts), containernetworking-plugins (bridge, host-local, loopback),
# iproute2 (the pod bridge) and nftables (the `nft` command kube-proxy's nftables mode runs).
# containerd and CoreDNS themselves are built from their Go modules by `testcluster`.
# Idempotent: no apt call when everything is there.
set -euo pipefail

log() { printf 'ensure-node-deps: %s\n' "$*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "ERROR: not root and no sudo"; exit 1; }
    SUDO=(sudo)
fi

missing=()
[ -x /usr/sbin/runc ] || missing+=(runc)
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] && [ -x /usr/lib/cni/loopback ] ||
    missing+=(containernetworking-plugins)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} with apt-get"
    # NB: other engineers/CI steps may hold the dpkg lock; wait for it instead of failing.
    apt_opts=(-o DPkg::Lock::Timeout=600 -q)
    "${SUDO[@]}" apt-get "${apt_opts[@]}" update >/dev/null
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get "${apt_opts[@]}" install -y "${missing[@]}" >/dev/null
fi
log "runc, CNI plugins, iproute2 and nftables present"
