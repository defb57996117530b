"""Build and cache a Go command from a pinned module version of the Go module proxy (e.g. Helm).

`ensure_go_tool(HELM)` downloads `helm.sh/helm/v3@v3.22.0` with `go mod download` (exact
version, never @latest), copies the module out of the read-only module cache, builds
`./cmd/helm` with the release's own version stamps, and caches the binary as
`~/.cache/embedding-operator/helm-v3.22.0`. As in build.py, the binary is written under a
temporary name and renamed into place, and a file lock keeps two concurrent callers from building
twice; a warm cache costs one `stat`. build.py's own binary is built from a wrapper module in this
repository instead, so only its cache location and Go lookup are shared.

    python -m testcluster.gotool helm      # prints the path of the cached helm binary
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from testcluster.build import _go_executable, cache_dir
from testcluster.errors import ClusterError


@dataclass(frozen=True)
class GoTool:
    """One command of one module version; `ldflags(module_dir)` stamps the release's version."""

    name: str
    module: str
    version: str
    package: str

    def ldflags(self, module_dir: Path) -> str:
        return "-s -w"


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
#: Cluster DNS for node mode (testcluster.dns): the stock plugin set, kubernetes plugin included.
COREDNS = GoTool(
    name="coredns", module="github.com/coredns/coredns", version="v1.12.4", package="."
)
TOOLS = {"helm": HELM, "coredns": COREDNS}


def tool_path(tool: GoTool) -> Path:
    """Where the cached binary lives (it may not exist yet)."""
    return cache_dir() / f"{tool.name}-{tool.version}"


def ensure_go_tool(tool: GoTool, *, quiet: bool = True) -> Path:
    """The cached binary, built first if the cache lacks it."""
    target = tool_path(tool)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{tool.name}.lock").open("w") as lock:
        # NB: a second caller blocks here until the first build finishes, then reuses it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        _build(tool, target, quiet=quiet)
    return target


def _go(args: list[str], *, cwd: Path | None, log: Path, step: str) -> str:
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")  # never fetch another toolchain behind our back
    with log.open("a") as out:
        out.write(f"$ go {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run(
            [_go_executable(), *args], cwd=cwd, env=env, capture_output=True, text=True
        )
        out.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise ClusterError(f"step '{step}' failed (exit {proc.returncode}); see the log: {log}")
    return proc.stdout


def _build(tool: GoTool, target: Path, *, quiet: bool) -> None:
    log = target.parent / f"{target.name}.build.log"
    log.write_text("")
    started = time.monotonic()
    if not quiet:
        print(f"gotool: building {target.name}; log: {log}", file=sys.stderr, flush=True)
    info = json.loads(
        _go(
            ["mod", "download", "-json", f"{tool.module}@{tool.version}"],
            cwd=None,
            log=log,
            step="go mod download",
        )
    )
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f"{tool.name}-src-") as tmp:
        # NB: the module cache is read-only (so would be the copy, and its clean-up would fail).
        src = Path(tmp) / "src"
        shutil.copytree(info["Dir"], src, copy_function=shutil.copyfile)
        for path in [src, *src.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        out = target.parent / f"{target.name}.tmp-{os.getpid()}"
        flags = tool.ldflags(src)
        _go(
            ["build", "-trimpath", f"-ldflags={flags}", "-o", str(out), tool.package],
            cwd=src,
            log=log,
            step="go build",
        )
    os.chmod(out, 0o755)
    os.replace(out, target)  # atomic: a cached path is never a half-written binary
    if not quiet:
        print(
            f"gotool: built {target} in {time.monotonic() - started:.0f}s",
            file=sys.stderr,
            flush=True,
        )


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
