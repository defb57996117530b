"""The node's service networking configs (testcluster.clusternet): what they promise in text.

The real proof is tests/integration/test_node.py (a ClusterIP answers from the host, names
resolve through CoreDNS from pods); these pin the promises a config change could quietly break.
"""

from __future__ import annotations

import json
from pathlib import Path

from testcluster import clusternet
from testcluster import node as node_mod


def test_coredns_serves_cluster_local_on_the_node_ip_and_forwards_nothing() -> None:
    text = clusternet.corefile(
        bind=node_mod.NODE_IP, kubeconfig=Path("/k"), context="coredns", ready_port=1234
    )
    assert f"bind {node_mod.NODE_IP}" in text
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa" in text
    assert "kubeconfig /k coredns" in text
    assert "ready 127.0.0.1:1234" in text
    # No query may leave this machine: no forward/proxy plugin, everything else NXDOMAIN.
    plugins = {line.split()[0] for line in text.splitlines() if line.strip()}
    assert not plugins & {"forward", "proxy", "grpc"}, plugins
    assert "rcode NXDOMAIN" in text


def test_kube_proxy_is_nftables_mode_and_leaves_the_machines_sysctls_alone() -> None:
    config = json.loads(
        clusternet.proxy_config(
            kubeconfig=Path("/k"),
            node_name=node_mod.NODE_NAME,
            node_ip=node_mod.NODE_IP,
            pod_cidr=node_mod.POD_SUBNET,
            healthz=1,
            metrics=2,
        )
    )
    assert config["mode"] == "nftables"
    assert config["clusterCIDR"] == node_mod.POD_SUBNET
    assert config["nodePortAddresses"] == [f"{node_mod.NODE_IP}/32"]
    assert config["healthzBindAddress"].startswith("127.0.0.1:")
    assert config["metricsBindAddress"].startswith("127.0.0.1:")
    conntrack = config["conntrack"]
    assert conntrack["maxPerCore"] == 0 and conntrack["min"] == 0
    assert all(conntrack[k] == "0s" for k in conntrack if k.endswith("Timeout"))


def test_coredns_may_only_read_what_its_kubernetes_plugin_watches() -> None:
    role, binding = clusternet.coredns_rbac()
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}  # type: ignore[index, union-attr]
    assert verbs == {"list", "watch"}
    assert binding["subjects"] == [  # type: ignore[index]
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": clusternet.COREDNS_USER}
    ]
