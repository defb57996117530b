"""Build and cache the `testcluster` binary (etcd + kube-apiserver + kube-controller-manager).

The binary comes from the small Go wrapper module in `go/` next to this file. A cold build takes
many minutes on a small machine, so the result is cached under the shared cache directory, keyed by
a hash of the wrapper's sources: only a fresh machine (or a changed wrapper) pays for it. The build
is gobuild.py's `ensure_built` (lock, temporary name, rename into place, build log), with `go build`
run in the wrapper module itself: it is a module of this repository, not one to download and copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
from pathlib import Path

from testcluster.errors import ClusterError
from testcluster.gobuild import cache_dir, ensure_built, go

GO_MODULE_DIR = Path(__file__).resolve().parent / "go"
#: Files whose content decides the binary; the cache key is their hash.
_KEY_FILES = ("go.mod", "go.sum", "main.go")


def kubernetes_version(module_dir: Path = GO_MODULE_DIR) -> str | None:
    """The k8s.io/kubernetes release the wrapper requires, e.g. "v1.36.3" (None if none)."""
    go_mod = (module_dir / "go.mod").read_text()
    match = re.search(r"^\s*k8s\.io/kubernetes (v\d+\.\d+\.\d+\S*)", go_mod, re.MULTILINE)
    return match.group(1) if match else None


def ldflags(module_dir: Path = GO_MODULE_DIR) -> str:
    """Linker flags: strip symbols, and stamp the release version as Kubernetes' own build does
    (hack/lib/version.sh); otherwise /version says v0.0.0-master and clients warn about skew."""
    flags = ["-s", "-w"]
    version = kubernetes_version(module_dir)
    if version is None:
        return " ".join(flags)
    major, minor = version.lstrip("v").split(".")[:2]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def source_hash(module_dir: Path = GO_MODULE_DIR) -> str:
    """A short hash of the wrapper module's sources (go.mod, go.sum, main.go) and the build
    recipe (ldflags)."""
    h = hashlib.sha256()
    h.update(ldflags(module_dir).encode() + b"\0")
    for name in _KEY_FILES:
        h.update(name.encode() + b"\0")
        h.update((module_dir / name).read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def binary_path(module_dir: Path = GO_MODULE_DIR) -> Path:
    """Where the binary for the current sources lives (it may not exist yet).

    `TESTCLUSTER_BIN` points at a prebuilt binary instead (e.g. one built elsewhere).
    """
    env = os.environ.get("TESTCLUSTER_BIN")
    if env:
        return Path(env)
    return cache_dir() / f"testcluster-{source_hash(module_dir)}"


def built_binary(module_dir: Path = GO_MODULE_DIR) -> Path:
    """The cached binary, or a ClusterError that says how to build it."""
    path = binary_path(module_dir)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ClusterError(
            f"testcluster binary not found at {path}; build it with `make testcluster-bin` "
            "(or `python -m testcluster build`; a cold build takes 10-25 minutes)"
        )
    return path


def ensure_binary(module_dir: Path = GO_MODULE_DIR, *, quiet: bool = False) -> Path:
    """Return the cached binary, building it first if the cache lacks it."""
    target = binary_path(module_dir)
    if os.environ.get("TESTCLUSTER_BIN") and not (target.is_file() and os.access(target, os.X_OK)):
        raise ClusterError(f"TESTCLUSTER_BIN={target} is not an executable file")

    def build(out: Path, log: Path) -> None:
        go(
            ["build", "-trimpath", f"-ldflags={ldflags(module_dir)}", "-o", str(out), "."],
            cwd=module_dir,
            log=log,
            step="go build",
            what=f"the wrapper module {module_dir}",
        )
        _prune(target)

    return ensure_built(
        target,
        lock=cache_dir() / "testcluster.lock",
        what=f"{target.name} (10-25 min cold, under a minute with a warm Go build cache)",
        build=build,
        quiet=quiet,
    )


#: A binary of other wrapper sources is deleted only when unused this long: several checkouts
#: (branches, worktrees) of different sources share one cache and each needs its own binary.
PRUNE_AFTER_SECONDS = 7 * 24 * 3600


def _prune(keep: Path) -> None:
    """Delete binaries of other wrapper sources (~120 MB each) not used for a week."""
    cutoff = time.time() - PRUNE_AFTER_SECONDS
    for old in keep.parent.glob("testcluster-*"):
        if old.name.startswith(keep.name):
            continue
        if not re.fullmatch(r"testcluster-[0-9a-f]{16}(\.build\.log)?", old.name):
            continue
        with contextlib.suppress(OSError):
            stat = old.stat()
            if max(stat.st_mtime, stat.st_atime) < cutoff:
                old.unlink()
