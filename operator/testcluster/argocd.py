"""Build and cache a real Argo CD (one binary for every component) from the Go module proxy.

Argo CD ships one `cmd` main whose `ARGOCD_BINARY_NAME` picks the component
(argocd-application-controller, argocd-repo-server, argocd). v3.2.11 is pinned: it is the newest
release that builds with the installed Go from the module zip alone (v3.3+ moved gitops-engine to a
nested module the zip lacks; v3.2.12 does not compile). The binary (~200 MB) is cached under the
project's cache directory keyed by the version, built to a temporary name and renamed into place
under a file lock, exactly like the testcluster binary (testcluster/build.py).

The module's `manifests/install.yaml` (CRDs, argocd-cm, RBAC) is read from the same download.

CLI: `python -m testcluster.argocd build` prints the binary path, `... install-yaml` its manifest.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from testcluster.build import _go_executable, cache_dir
from testcluster.errors import ClusterError

#: The pinned Argo CD release (exact version: the Go proxy is never asked for @latest).
ARGOCD_VERSION = "v3.2.11"
ARGOCD_MODULE = "github.com/argoproj/argo-cd/v3"


def binary_path(version: str = ARGOCD_VERSION) -> Path:
    """Where the cached binary lives (`ARGOCD_BIN` points at a prebuilt one instead)."""
    env = os.environ.get("ARGOCD_BIN")
    if env:
        return Path(env)
    return cache_dir() / f"argocd-{version}"


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # NB: never let the go command fetch a different toolchain behind our back.
    env.setdefault("GOTOOLCHAIN", "local")
    env.setdefault("GOFLAGS", "-mod=mod")
    env.setdefault("CGO_ENABLED", "0")  # as Argo CD's own Makefile builds it: a static binary
    return env


def module_dir(version: str = ARGOCD_VERSION) -> Path:
    """Download (or find in the Go module cache) Argo CD's module; return its read-only dir."""
    proc = subprocess.run(
        [_go_executable(), "mod", "download", "-json", f"{ARGOCD_MODULE}@{version}"],
        cwd=tempfile.gettempdir(),  # outside any module: `go mod download` of an exact version
        env=_go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        info = json.loads(proc.stdout)
    except json.JSONDecodeError:
        info = {}
    if proc.returncode != 0 or "Dir" not in info:
        detail = info.get("Error") or proc.stderr.strip() or proc.stdout.strip()
        raise ClusterError(f"step 'go mod download {ARGOCD_MODULE}@{version}' failed: {detail}")
    return Path(info["Dir"])


def install_yaml(version: str = ARGOCD_VERSION) -> Path:
    """Argo CD's own `manifests/install.yaml` of the pinned release."""
    path = module_dir(version) / "manifests" / "install.yaml"
    if not path.is_file():
        raise ClusterError(f"{path} missing from the Argo CD {version} module")
    return path


def ensure_binary(version: str = ARGOCD_VERSION, *, quiet: bool = False) -> Path:
    """Return the cached Argo CD binary, building it first if the cache lacks it."""
    target = binary_path(version)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    if os.environ.get("ARGOCD_BIN"):
        raise ClusterError(f"ARGOCD_BIN={target} is not an executable file")
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / "argocd.lock").open("w") as lock:
        # NB: a second caller blocks here until the first build finishes, then reuses it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        _build(version, target, quiet=quiet)
    return target


def _build(version: str, target: Path, *, quiet: bool) -> None:
    src = module_dir(version)
    log_path = target.parent / f"{target.name}.build.log"
    tmp = target.parent / f"{target.name}.tmp-{os.getpid()}"
    ldflags = f"-s -w -X github.com/argoproj/argo-cd/v3/common.version={version.lstrip('v')}"
    cmd = [_go_executable(), "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(tmp), "./cmd"]
    if not quiet:
        print(
            f"argocd: building {target.name} (4-5 min cold on 2 cores); log: {log_path}",
            file=sys.stderr,
            flush=True,
        )
    started = time.monotonic()
    # The module cache is read-only: build from a writable copy (removed afterwards).
    with tempfile.TemporaryDirectory(prefix="argocd-src-") as work:
        build_dir = Path(work) / "argo-cd"
        shutil.copytree(src, build_dir)
        for path in (build_dir, *build_dir.rglob("*")):
            path.chmod(path.stat().st_mode | 0o200)
        with log_path.open("w") as log:
            log.write(f"$ (cd {build_dir} && {' '.join(cmd)})\n")
            log.flush()
            proc = subprocess.run(
                cmd, cwd=build_dir, env=_go_env(), stdout=log, stderr=subprocess.STDOUT, check=False
            )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ClusterError(
            f"step 'go build ./cmd' of Argo CD {version} failed (exit {proc.returncode}); "
            f"see the log: {log_path}"
        )
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)  # atomic: a cached path is never a half-written binary
    if not quiet:
        print(
            f"argocd: built {target} in {time.monotonic() - started:.0f}s",
            file=sys.stderr,
            flush=True,
        )


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
