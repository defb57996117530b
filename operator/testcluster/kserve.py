"""KServe's own artifacts, taken from its Go module: CRDs, default ConfigMap, webhook manifests and
the controller binary (`cmd/manager`).

The version is pinned (the one the operator's InferenceServices are tested against). `go mod
download` fetches the module into Go's module cache; the files the project needs are then copied
into the project cache, `~/.cache/embedding-operator/kserve-<version>/`, so a later run needs
neither the network nor the Go module cache. KServe's go.mod has replace directives, so `go
install …@version` cannot build it: the controller is built from a copy of the module
(`go build ./cmd/manager`), as its own Makefile does.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from testcluster.build import _go_executable, cache_dir
from testcluster.errors import ClusterError

MODULE = "github.com/kserve/kserve"
VERSION = "v0.20.0"

#: CRDs the controller watches (it exits if one is missing); the operator itself needs the first
#: three. Paths inside the module.
CRD_FILES = (
    "config/crd/full/serving.kserve.io_inferenceservices.yaml",
    "config/crd/full/serving.kserve.io_servingruntimes.yaml",
    "config/crd/full/serving.kserve.io_clusterservingruntimes.yaml",
    "config/crd/full/serving.kserve.io_inferencegraphs.yaml",
    "config/crd/full/serving.kserve.io_trainedmodels.yaml",
    "config/crd/full/clusterstoragecontainer/serving.kserve.io_clusterstoragecontainers.yaml",
    "config/crd/full/localmodel/serving.kserve.io_localmodelcaches.yaml",
    "config/crd/full/localmodel/serving.kserve.io_localmodelnamespacecaches.yaml",
    "config/crd/full/localmodel/serving.kserve.io_localmodelnodegroups.yaml",
    "config/crd/full/localmodel/serving.kserve.io_localmodelnodes.yaml",
    "config/crd/full/llmisvc/serving.kserve.io_llminferenceservices.yaml",
    "config/crd/full/llmisvc/serving.kserve.io_llminferenceserviceconfigs.yaml",
)
CONFIGMAP_FILE = "config/configmap/inferenceservice.yaml"
WEBHOOK_FILE = "config/webhook/manifests.yaml"
_ASSETS = (*CRD_FILES, CONFIGMAP_FILE, WEBHOOK_FILE)


def kserve_dir(version: str = VERSION) -> Path:
    """The cache directory of one KServe version (it may not exist yet)."""
    return cache_dir() / f"kserve-{version}"


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")  # never fetch another toolchain behind our back
    env.setdefault("GOFLAGS", "-mod=mod")
    return env


def _module_source(version: str) -> Path:
    """`go mod download` the module (a no-op when Go's module cache has it); its directory."""
    go = _go_executable()
    proc = subprocess.run(
        [go, "mod", "download", "-json", f"{MODULE}@{version}"],
        capture_output=True,
        text=True,
        env=_go_env(),
        cwd=cache_dir(),
        check=False,
    )
    try:
        info = json.loads(proc.stdout or "{}")
    except ValueError:
        info = {}
    if proc.returncode != 0 or not info.get("Dir"):
        detail = info.get("Error") or proc.stderr.strip()[-800:]
        raise ClusterError(f"step 'go mod download {MODULE}@{version}' failed: {detail}")
    return Path(info["Dir"])


def ensure_assets(version: str = VERSION) -> Path:
    """KServe's CRDs, ConfigMap and webhook manifests in the cache (copied once); the directory.

    Layout inside it mirrors the module (`config/crd/full/…`)."""
    target = kserve_dir(version)
    stamp = target / "assets.ok"
    if stamp.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"kserve-{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file():
            return target
        source = _module_source(version)
        for rel in _ASSETS:
            src, dst = source / rel, target / rel
            if not src.is_file():
                raise ClusterError(f"{MODULE}@{version} has no {rel}")
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(dst.name + ".tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
        stamp.write_text(f"{MODULE}@{version}\n")
    return target


def crd_files(version: str = VERSION, *, plurals: tuple[str, ...] | None = None) -> list[Path]:
    """Paths of the cached CRD files: all of them, or those of the given resource plurals
    (e.g. `("inferenceservices",)`), in that order."""
    root = ensure_assets(version)
    files = {Path(rel).name: root / rel for rel in CRD_FILES}
    if plurals is None:
        return list(files.values())
    wanted = [f"serving.kserve.io_{plural}.yaml" for plural in plurals]
    unknown = [name for name in wanted if name not in files]
    if unknown:
        raise ClusterError(f"no KServe CRD file {', '.join(unknown)} in {MODULE}@{version}")
    return [files[name] for name in wanted]


def controller_binary(version: str = VERSION) -> Path:
    return kserve_dir(version) / "manager"


def ensure_controller(version: str = VERSION, *, quiet: bool = False) -> Path:
    """The cached KServe controller (`cmd/manager`), built first if the cache lacks it."""
    target = controller_binary(version)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    ensure_assets(version)
    with (target.parent.parent / f"kserve-{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        _build_controller(version, target, quiet=quiet)
    return target


def _build_controller(version: str, target: Path, *, quiet: bool) -> None:
    source = _module_source(version)
    work = target.parent / f"src.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log_path = target.parent / "manager.build.log"
    tmp = target.with_name(f"manager.tmp-{os.getpid()}")
    try:
        # NB: the module cache is read-only and `go build` of the module itself needs its own
        # go.mod (with the replace directives) as the main module: build from a writable copy.
        for name in ("go.mod", "go.sum"):
            shutil.copyfile(source / name, work / name)
        for name in ("cmd", "pkg"):
            shutil.copytree(source / name, work / name, copy_function=shutil.copyfile)
        cmd = [_go_executable(), "build", "-trimpath", "-ldflags=-s -w", "-o", str(tmp)]
        cmd.append("./cmd/manager")
        if not quiet:
            print(
                f"testcluster: building KServe {version} controller (2-4 min cold); "
                f"log: {log_path}",
                file=sys.stderr,
                flush=True,
            )
        started = time.monotonic()
        with log_path.open("w") as log:
            log.write(f"$ (cd {work} && {' '.join(cmd)})\n")
            log.flush()
            proc = subprocess.run(
                cmd, cwd=work, env=_go_env(), stdout=log, stderr=subprocess.STDOUT, check=False
            )
        if proc.returncode != 0:
            raise ClusterError(
                f"step 'go build ./cmd/manager' ({MODULE}@{version}) failed "
                f"(exit {proc.returncode}); see the log: {log_path}"
            )
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
        if not quiet:
            print(
                f"testcluster: built {target} in {time.monotonic() - started:.0f}s",
                file=sys.stderr,
                flush=True,
            )
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
