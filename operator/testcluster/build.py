"""Build and cache the `testcluster` binary (etcd + kube-apiserver + kube-controller-manager).

The binary comes from the small Go wrapper module in `go/` next to this file. A cold build takes
many minutes on a small machine, so the result is cached under the shared cache directory, keyed by
a hash of the wrapper's sources: only a fresh machine (or a changed wrapper) pays for it. The build
writes to a temporary name and is renamed into place, so a cached path is always a complete binary;
a file lock keeps two concurrent `build` calls from compiling twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from testcluster.errors import ClusterError

GO_MODULE_DIR = Path(__file__).resolve().parent / "go"
#: Files whose content decides the binary; the cache key is their hash.
_KEY_FILES = ("go.mod", "go.sum", "main.go")


def cache_dir() -> Path:
    """The project's cache directory (`EMBEDDING_OPERATOR_CACHE` overrides the default)."""
    env = os.environ.get("EMBEDDING_OPERATOR_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "embedding-operator"


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


def _go_executable() -> str:
    go = os.environ.get("GO") or shutil.which("go")
    if go:
        return go
    fallback = Path("/usr/local/go/bin/go")
    if fallback.is_file():
        return str(fallback)
    raise ClusterError("step 'find go': no `go` on PATH (install Go 1.26 or set GO=/path/to/go)")


def ensure_binary(module_dir: Path = GO_MODULE_DIR, *, quiet: bool = False) -> Path:
    """Return the cached binary, building it first if the cache lacks it."""
    target = binary_path(module_dir)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    if os.environ.get("TESTCLUSTER_BIN"):
        raise ClusterError(f"TESTCLUSTER_BIN={target} is not an executable file")
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / "testcluster.lock"
    with lock_path.open("w") as lock:
        # NB: a second caller blocks here until the first build finishes, then reuses it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        _build(module_dir, target, quiet=quiet)
    return target


def _build(module_dir: Path, target: Path, *, quiet: bool) -> None:
    go = _go_executable()
    log_path = target.parent / f"{target.name}.build.log"
    tmp = target.parent / f"{target.name}.tmp-{os.getpid()}"
    cmd = [go, "build", "-trimpath", f"-ldflags={ldflags(module_dir)}", "-o", str(tmp), "."]
    env = dict(os.environ)
    # NB: never let the go command fetch a different toolchain behind our back.
    env.setdefault("GOTOOLCHAIN", "local")
    if not quiet:
        print(
            f"testcluster: building {target.name} (10-25 min cold, under a minute with a warm "
            f"Go build cache); log: {log_path}",
            file=sys.stderr,
            flush=True,
        )
    started = time.monotonic()
    with log_path.open("w") as log:
        log.write(f"$ (cd {module_dir} && {' '.join(cmd)})\n")
        log.flush()
        proc = subprocess.run(
            cmd, cwd=module_dir, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ClusterError(
            f"step 'go build' failed (exit {proc.returncode}) in {module_dir}; "
            f"see the log: {log_path}"
        )
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)  # atomic: a cached path is never a half-written binary
    _prune(target)
    if not quiet:
        print(
            f"testcluster: built {target} in {time.monotonic() - started:.0f}s",
            file=sys.stderr,
            flush=True,
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
