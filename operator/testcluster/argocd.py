"""A real Argo CD (one binary for every component) from the Go module proxy: the binary is the
`ARGOCD` tool below (pinned, built by the one builder, gobuild.py, cached as
`~/.cache/embedding-operator/argocd-<version>`); its own `manifests/install.yaml` (CRDs, argocd-cm,
RBAC) comes from the same download.

Argo CD ships one `cmd` main whose `ARGOCD_BINARY_NAME` picks the component
(argocd-application-controller, argocd-repo-server, argocd).

CLI: `python -m testcluster.argocd build` prints the binary path, `... install-yaml` its manifest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from testcluster.errors import ClusterError
from testcluster.gobuild import GoTool, ensure_go_tool, module_source, tool_path


class _ArgoCD(GoTool):
    def ldflags(self, module_dir: Path) -> str:
        return f"-s -w -X {self.module}/common.version={self.version.lstrip('v')}"


#: One binary for every Argo CD component (`ARGOCD_BINARY_NAME` picks one). v3.2.11 is the newest
#: release that builds with the installed Go from the module zip alone (v3.3+ moved gitops-engine
#: to a nested module the zip lacks; v3.2.12 does not compile).
ARGOCD = _ArgoCD(
    name="argocd",
    module="github.com/argoproj/argo-cd/v3",
    version="v3.2.11",
    package="./cmd",
    env=(("GOFLAGS", "-mod=mod"), ("CGO_ENABLED", "0")),  # as its Makefile: a static binary
    cold="4-5 min cold on 2 cores",
)
#: The pinned Argo CD release (exact version: the Go proxy is never asked for @latest).
ARGOCD_VERSION = ARGOCD.version


def binary_path() -> Path:
    """Where the cached binary lives (`ARGOCD_BIN` points at a prebuilt one instead)."""
    env = os.environ.get("ARGOCD_BIN")
    return Path(env) if env else tool_path(ARGOCD)


def install_yaml(version: str = ARGOCD_VERSION) -> Path:
    """Argo CD's own `manifests/install.yaml` of the pinned release."""
    path = module_source(ARGOCD.module, version, ARGOCD.env) / "manifests" / "install.yaml"
    if not path.is_file():
        raise ClusterError(f"{path} missing from the Argo CD {version} module")
    return path


def ensure_binary(*, quiet: bool = False) -> Path:
    """Return the cached Argo CD binary, building it first if the cache lacks it."""
    prebuilt = os.environ.get("ARGOCD_BIN")
    if not prebuilt:
        return ensure_go_tool(ARGOCD, quiet=quiet)
    if not (os.path.isfile(prebuilt) and os.access(prebuilt, os.X_OK)):
        raise ClusterError(f"ARGOCD_BIN={prebuilt} is not an executable file")
    return Path(prebuilt)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args == ["build"]:
            print(ensure_binary())
        elif args == ["install-yaml"]:
            print(install_yaml())
        else:
            print("usage: python -m testcluster.argocd build|install-yaml", file=sys.stderr)
            return 2
    except ClusterError as err:
        print(f"argocd: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
