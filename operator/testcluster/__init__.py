"""Local Kubernetes control plane for tests and local runs: etcd + kube-apiserver +
kube-controller-manager built from upstream Go modules into one cached binary.

    from testcluster import Cluster
    with Cluster(tmp_dir) as c:          # or c.start() / c.stop()
        subprocess.run(["kubectl", "--kubeconfig", c.kubeconfig, "get", "ns"])

CLI: `python -m testcluster build|up|down|status` (see docs/testcluster.md).
"""

from testcluster.build import binary_path, built_binary, ensure_binary
from testcluster.cluster import ADMIN_USER, CONTROLLERS, TESTER_USER, Cluster
from testcluster.errors import ClusterError
from testcluster.gobuild import cache_dir

__all__ = [
    "ADMIN_USER",
    "CONTROLLERS",
    "TESTER_USER",
    "Cluster",
    "ClusterError",
    "binary_path",
    "built_binary",
    "cache_dir",
    "ensure_binary",
]
