"""The one builder of the Go binaries the project makes, each cached under the project's cache
directory (`~/.cache/embedding-operator`) and keyed by version or source hash.

Every build has one shape (`ensure_built`): a warm cache costs one `stat` and never runs `go`; a
cold one takes a file lock (a second caller waits, then reuses the result), writes a fresh build
log beside the binary, builds to a temporary name and renames it into place, so a cached path is
never a half-written binary.

`GoTool` is one command of one pinned module version of the Go module proxy (Helm in gotool.py,
Argo CD in argocd.py, KServe's controller in kserve.py; gotool.py's `TOOLS` is the table of them).
`ensure_go_tool` downloads the exact version with `go mod download` (never @latest) and builds
from a writable copy of the module: the module cache is read-only, and a module with replace
directives, like KServe's, builds only as the main module (never with `go install …@version`).
build.py builds the testcluster wrapper module of this repository with `ensure_built` directly.
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from testcluster.errors import ClusterError


def cache_dir() -> Path:
    """The project's cache directory (`EMBEDDING_OPERATOR_CACHE` overrides the default)."""
    env = os.environ.get("EMBEDDING_OPERATOR_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "embedding-operator"


def go_executable() -> str:
    go = os.environ.get("GO") or shutil.which("go")
    if go:
        return go
    fallback = Path("/usr/local/go/bin/go")
    if fallback.is_file():
        return str(fallback)
    raise ClusterError("step 'find go': no `go` on PATH (install Go 1.26 or set GO=/path/to/go)")


def go_env(defaults: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """This process's environment with a build's defaults (the caller's own settings win)."""
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")  # never fetch another toolchain behind our back
    for name, value in defaults:
        env.setdefault(name, value)
    return env


def module_source(module: str, version: str, env: Iterable[tuple[str, str]] = ()) -> Path:
    """`go mod download` one exact module version (a no-op when Go's module cache has it); its
    read-only directory in the module cache."""
    proc = subprocess.run(
        [go_executable(), "mod", "download", "-json", f"{module}@{version}"],
        cwd=tempfile.gettempdir(),  # outside any module: a plain download of an exact version
        env=go_env(env),
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        info = json.loads(proc.stdout or "{}")
    except ValueError:
        info = {}
    if proc.returncode != 0 or not info.get("Dir"):
        detail = info.get("Error") or proc.stderr.strip()[-800:] or proc.stdout.strip()[-800:]
        raise ClusterError(f"step 'go mod download {module}@{version}' failed: {detail}")
    return Path(info["Dir"])


def go(
    args: list[str],
    *,
    cwd: Path,
    log: Path,
    step: str,
    what: str,
    env: Iterable[tuple[str, str]] = (),
) -> None:
    """Run one go command, its output appended to `log`; a failure names the step and the log."""
    cmd = [go_executable(), *args]
    with log.open("a") as out:
        out.write(f"$ (cd {cwd} && {' '.join(cmd)})\n")
        out.flush()
        proc = subprocess.run(
            cmd, cwd=cwd, env=go_env(env), stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if proc.returncode != 0:
        raise ClusterError(
            f"step '{step}' of {what} failed (exit {proc.returncode}); see the log: {log}"
        )


def ensure_built(
    target: Path, *, lock: Path, what: str, build: Callable[[Path, Path], None], quiet: bool
) -> Path:
    """`target` when it is already an executable file; otherwise `build(out, log)` writes the
    binary to `out` (its output going to `log`, `<target>.build.log`) under the file `lock`, and
    `out` is renamed to `target`."""
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("w") as held:
        # NB: a second caller blocks here until the first build finishes, then reuses it.
        fcntl.flock(held, fcntl.LOCK_EX)
        if target.is_file() and os.access(target, os.X_OK):
            return target
        log = target.with_name(f"{target.name}.build.log")
        log.write_text("")
        out = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        _say(quiet, f"building {what}; log: {log}")
        started = time.monotonic()
        try:
            build(out, log)
            os.chmod(out, 0o755)
            os.replace(out, target)  # atomic: a cached path is never a half-written binary
        finally:
            out.unlink(missing_ok=True)
        _say(quiet, f"built {target} in {time.monotonic() - started:.0f}s")
    return target


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"testcluster: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class GoTool:
    """One command (`package`) of one module version; `ldflags(module_dir)` stamps the release's
    version as its own build does."""

    name: str
    module: str
    version: str
    package: str
    #: For a tool whose cache entry `<name>-<version>` is a directory (KServe: the controller
    #: beside the module's manifests), the binary's name in it; empty: the entry is the binary.
    binary: str = ""
    #: The module's top-level entries the build needs (a smaller copy); empty: all of them.
    copy: tuple[str, ...] = ()
    #: Environment defaults of the release's own build (the caller's environment wins).
    env: tuple[tuple[str, str], ...] = ()
    #: How long a cold build takes, for the "building" line.
    cold: str = ""

    def ldflags(self, module_dir: Path) -> str:
        return "-s -w"


def tool_dir(tool: GoTool) -> Path:
    """The tool's cache entry: the binary itself, or the directory that holds it."""
    return cache_dir() / f"{tool.name}-{tool.version}"


def tool_path(tool: GoTool) -> Path:
    """Where the cached binary lives (it may not exist yet)."""
    return tool_dir(tool) / tool.binary if tool.binary else tool_dir(tool)


def tool_lock(tool: GoTool) -> Path:
    """The build's lock: a directory entry's own lock, which its other writers take too."""
    name = tool_dir(tool).name if tool.binary else tool.name
    return cache_dir() / f"{name}.lock"


def ensure_go_tool(tool: GoTool, *, quiet: bool = True) -> Path:
    """The cached binary, built first if the cache lacks it."""

    def build(out: Path, log: Path) -> None:
        source = module_source(tool.module, tool.version, tool.env)
        with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=f"{tool.name}-src-") as tmp:
            src = Path(tmp) / "src"
            _writable_copy(source, src, tool.copy)
            go(
                ["build", "-trimpath", f"-ldflags={tool.ldflags(src)}", "-o", str(out)]
                + [tool.package],
                cwd=src,
                log=log,
                step=f"go build {tool.package}",
                what=f"{tool.module}@{tool.version}",
                env=tool.env,
            )

    cold = f" ({tool.cold})" if tool.cold else ""
    what = f"{tool.name} {tool.version}{cold}"
    return ensure_built(tool_path(tool), lock=tool_lock(tool), what=what, build=build, quiet=quiet)


def _writable_copy(source: Path, dest: Path, entries: tuple[str, ...]) -> None:
    # NB: the module cache is read-only (so would be a plain copy, and its clean-up would fail).
    dest.mkdir()
    for name in entries or tuple(sorted(os.listdir(source))):
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name, copy_function=shutil.copyfile)
        else:
            shutil.copyfile(source / name, dest / name)
    for path in dest.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
