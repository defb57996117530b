"""Service networking for node mode: kube-proxy (nftables) and cluster DNS (CoreDNS).

- **kube-proxy** runs from the testcluster binary (same Kubernetes release) in `nftables` mode: all
  its rules live in two tables of its own (`ip kube-proxy`, `ip6 kube-proxy`), so teardown is two
  `nft delete table` calls and the leftover check is one `nft list tables`. (iptables mode would
  scatter KUBE-* chains over the nat and filter tables of both families.) It leaves the host's
  sysctls alone (conntrack sizes and timeouts 0 = unchanged).
- **The service range is routed onto the pod bridge** (`ip route 10.0.0.0/24 dev tcnode0`): the
  host's connections to a ClusterIP leave from the node IP and are DNATed to a pod, and a ClusterIP
  nobody serves goes to the bridge, where nothing answers, never to the default route.
- **CoreDNS** (built from its Go module, `COREDNS_TOOL`) runs as a host process bound
  to the node IP, port 53, with the `kubernetes` plugin for `cluster.local` and the reverse zones.
  Every other name is NXDOMAIN: nothing is forwarded, so no query leaves this machine. The
  kubelet's `clusterDNS` is the node IP, the NodeLocal DNSCache layout: pods and hostNetwork pods
  (`dnsPolicy: ClusterFirstWithHostNet`) reach it without kube-proxy, and so does the host.
  A host process rather than a pod because the API server listens on loopback only (a pod would
  need hostNetwork anyway) and the `kubernetes` Service has no endpoints in this harness.

Nothing here starts processes: node.py does, with the argv, configs and checks made here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from testcluster.errors import ClusterError
from testcluster.gobuild import GoTool

PROXY, COREDNS = "kube-proxy", "coredns"
#: CoreDNS with its stock plugin set (kubernetes and template included), built by gobuild.py and
#: cached as `~/.cache/embedding-operator/coredns-v1.12.4` (`python -m testcluster.gotool coredns`).
COREDNS_TOOL = GoTool(
    name="coredns", module="github.com/coredns/coredns", version="v1.12.4", package="."
)
PROXY_USER = "system:kube-proxy"  # bound to system:node-proxier by the bootstrap RBAC policy
COREDNS_USER = "system:coredns"
COREDNS_ROLE = "testcluster:coredns"
CLUSTER_DOMAIN = "cluster.local"
#: kube-proxy's nftables table, in both families (pkg/proxy/nftables: kubeProxyTable).
NFT_TABLE = "kube-proxy"
NFT_FAMILIES = ("ip", "ip6")
#: Chains a kubelet with makeIPTablesUtilChains (the default) makes; ours sets it to false, and
#: stop() removes any that an earlier run (or another kubelet config) left behind.
KUBELET_CHAINS = ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT")
_IPTABLES = ("iptables", "ip6tables")
_TABLES = ("filter", "nat", "mangle")


def proxy_config(
    *, kubeconfig: Path, node_name: str, node_ip: str, pod_cidr: str, healthz: int, metrics: int
) -> str:
    """The KubeProxyConfiguration (JSON is YAML) for nftables mode on this node."""
    return json.dumps(
        {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "nftables",
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "hostnameOverride": node_name,
            "clusterCIDR": pod_cidr,
            "detectLocalMode": "ClusterCIDR",
            "nodePortAddresses": [f"{node_ip}/32"],
            "healthzBindAddress": f"127.0.0.1:{healthz}",
            "metricsBindAddress": f"127.0.0.1:{metrics}",
            "enableProfiling": False,
            # NB: 0 = leave the machine's value alone (this VM may not allow writing them).
            "oomScoreAdj": 0,
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
                "udpTimeout": "0s",
                "udpStreamTimeout": "0s",
            },
            "nftables": {"syncPeriod": "30s", "minSyncPeriod": "1s"},
        },
        indent=2,
    )


def corefile(*, bind: str, kubeconfig: Path, context: str, ready_port: int) -> str:
    """CoreDNS's configuration: cluster.local from the API, NXDOMAIN for every other name.

    Two server blocks, because CoreDNS runs a block's plugins in its compiled order (plugin.cfg:
    `template` before `kubernetes`), not in the Corefile's: one block would answer NXDOMAIN for
    cluster names too. A query goes to the block of its most specific zone."""
    zones = f"{CLUSTER_DOMAIN} in-addr.arpa ip6.arpa"
    return f"""\
{" ".join(f"{z}:53" for z in zones.split())} {{
    bind {bind}
    errors
    ready 127.0.0.1:{ready_port}
    kubernetes {zones} {{
        kubeconfig {kubeconfig} {context}
        pods insecure
        ttl 5
    }}
}}
.:53 {{
    bind {bind}
    errors
    # Nothing is forwarded: all traffic stays on this machine.
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""


def coredns_rbac() -> list[dict[str, object]]:
    """What CoreDNS's kubernetes plugin reads (its upstream ClusterRole), bound to its user."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": COREDNS_ROLE},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": COREDNS_ROLE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": COREDNS_ROLE,
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": COREDNS_USER}
            ],
        },
    ]


def check_prerequisites() -> list[str]:
    """Debian packages kube-proxy's nftables mode needs that are missing."""
    return [] if shutil.which("nft") else ["nftables"]


# --- teardown and leftovers ----------------------------------------------------------------------


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def nft_tables() -> list[str]:
    """kube-proxy's nftables tables present on the machine, as 'family name'."""
    if shutil.which("nft") is None:
        return []
    proc = _run(["nft", "list", "tables"])
    found = []
    for line in proc.stdout.splitlines():
        parts = line.split()  # "table ip kube-proxy"
        if len(parts) == 3 and parts[0] == "table" and parts[2] == NFT_TABLE:
            found.append(f"{parts[1]} {parts[2]}")
    return found


def iptables_chains() -> list[str]:
    """Kubelet KUBE-* chains present in iptables (either family), as 'cmd table chain'."""
    found = []
    for cmd in _IPTABLES:
        if shutil.which(cmd) is None:
            continue
        for table in _TABLES:
            for line in _run([cmd, "-w", "-t", table, "-S"]).stdout.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == "-N" and parts[1] in KUBELET_CHAINS:
                    found.append(f"{cmd} {table} {parts[1]}")
    return found


def cleanup() -> None:
    """Remove kube-proxy's tables and kubelet chains (idempotent; run after both stopped)."""
    for family in NFT_FAMILIES:
        if f"{family} {NFT_TABLE}" in nft_tables():
            proc = _run(["nft", "delete", "table", family, NFT_TABLE])
            if proc.returncode != 0:
                raise ClusterError(f"step 'nft delete table {family} {NFT_TABLE}': {proc.stderr}")
    for cmd in _IPTABLES:
        if shutil.which(cmd) is None:
            continue
        for table in _TABLES:
            rules = _run([cmd, "-w", "-t", table, "-S"]).stdout.splitlines()
            # Jumps into the chains first (a referenced chain cannot be deleted), then the chains.
            for rule in rules:
                parts = rule.split()
                if parts[:1] == ["-A"] and "-j" in parts:
                    target = parts[parts.index("-j") + 1]
                    if target in KUBELET_CHAINS and parts[1] not in KUBELET_CHAINS:
                        _run([cmd, "-w", "-t", table, "-D", *parts[1:]])
            for chain in KUBELET_CHAINS:
                if f"-N {chain}" in rules:
                    _run([cmd, "-w", "-t", table, "-F", chain])
                    _run([cmd, "-w", "-t", table, "-X", chain])


def leftovers() -> list[str]:
    """What of the node's service networking is still on the machine."""
    found = [f"nftables table {t}" for t in nft_tables()]
    found += [f"iptables chain {c}" for c in iptables_chains()]
    return found
