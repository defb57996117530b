"""The Go tools the project builds from pinned modules of the Go module proxy, as one table
(`TOOLS`) for the CLI; each is a `GoTool` of the one builder (gobuild.py), cached as
`~/.cache/embedding-operator/<name>-<version>`. Helm is defined here; Argo CD, KServe's
controller and CoreDNS beside the rest of their harness (argocd.py, kserve.py, clusternet.py).

    python -m testcluster.gotool helm      # prints the path of the cached helm binary
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from testcluster.argocd import ARGOCD
from testcluster.clusternet import COREDNS_TOOL
from testcluster.errors import ClusterError
from testcluster.gobuild import GoTool, ensure_go_tool
from testcluster.kserve import KSERVE


class _Helm(GoTool):
    def ldflags(self, module_dir: Path) -> str:
        # What helm's Makefile stamps: the version `helm version` prints, and the Kubernetes
        # version `helm template`/`lint` assume without a cluster (from its client-go).
        base = "helm.sh/helm/v3"
        flags = [
            "-s -w",
            f"-X {base}/internal/version.version={self.version}",
            f"-X {base}/internal/version.gitTreeState=clean",
        ]
        go_mod = (module_dir / "go.mod").read_text()
        match = re.search(r"^\s*k8s\.io/client-go v0\.(\d+)\.\d+", go_mod, re.MULTILINE)
        if match:
            for pkg in ("pkg/lint/rules", "pkg/chartutil"):
                flags += [
                    f"-X {base}/{pkg}.k8sVersionMajor=1",
                    f"-X {base}/{pkg}.k8sVersionMinor={match.group(1)}",
                ]
        return " ".join(flags)


HELM = _Helm(name="helm", module="helm.sh/helm/v3", version="v3.22.0", package="./cmd/helm")
TOOLS = {tool.name: tool for tool in (HELM, ARGOCD, KSERVE, COREDNS_TOOL)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in TOOLS:
        print(f"usage: python -m testcluster.gotool {{{','.join(TOOLS)}}}", file=sys.stderr)
        return 2
    try:
        print(ensure_go_tool(TOOLS[args[0]], quiet=False))
    except ClusterError as error:
        print(f"gotool: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
