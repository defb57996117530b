"""The one builder's cache (gobuild.py): the wrapper's binary keyed by its sources, a pinned Go
tool built from a copy of its module; both honour the cache env, build atomically and fail with the
step and log named. Uses a tiny throwaway module and a tiny module of the Go module proxy, never
the real (slow) ones.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from testcluster import ClusterError, build
from testcluster.gobuild import GoTool, ensure_go_tool, tool_path

pytestmark = pytest.mark.integration

GO_MOD = "module example.com/tiny\n\ngo 1.22\n"
MAIN_OK = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("tiny") }\n'
MAIN_BROKEN = "package main\n\nfunc main() { this is not go }\n"


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EMBEDDING_OPERATOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TESTCLUSTER_BIN", raising=False)
    mod = tmp_path / "mod"
    mod.mkdir()
    (mod / "go.mod").write_text(GO_MOD)
    (mod / "go.sum").write_text("")
    (mod / "main.go").write_text(MAIN_OK)
    return mod


def test_cache_key_follows_every_source_file(module: Path, tmp_path: Path) -> None:
    first = build.binary_path(module)
    assert first.parent == tmp_path / "cache"
    assert first.name == f"testcluster-{build.source_hash(module)}"
    seen = {first}
    for name in ("go.mod", "go.sum", "main.go"):
        (module / name).write_text((module / name).read_text() + "\n// changed\n")
        seen.add(build.binary_path(module))
    assert len(seen) == 4


def test_testcluster_bin_env_overrides_the_cache(
    module: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESTCLUSTER_BIN", str(tmp_path / "elsewhere"))
    assert build.binary_path(module) == tmp_path / "elsewhere"
    with pytest.raises(ClusterError, match="make testcluster-bin"):
        build.built_binary(module)


@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")
def test_build_then_reuse(module: Path) -> None:
    target = build.ensure_binary(module, quiet=True)
    assert target == build.binary_path(module)
    assert os.access(target, os.X_OK)
    assert not list(target.parent.glob("*.tmp-*"))  # renamed into place, nothing half-written
    mtime = target.stat().st_mtime_ns
    assert build.ensure_binary(module, quiet=True) == target
    assert target.stat().st_mtime_ns == mtime  # cached: not rebuilt


@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")
def test_failed_build_names_the_step_and_the_log(module: Path) -> None:
    (module / "main.go").write_text(MAIN_BROKEN)
    with pytest.raises(ClusterError) as err:
        build.ensure_binary(module, quiet=True)
    message = str(err.value)
    assert f"step 'go build' of the wrapper module {module} failed (exit" in message
    log = Path(message.rsplit("see the log: ", 1)[1])
    assert "main.go" in log.read_text()  # the compiler's complaint is in the log
    assert not build.binary_path(module).exists()


#: A small module of the Go module proxy with a command: the one builder's path for pinned tools.
TOMLV = GoTool(
    name="tomlv", module="github.com/BurntSushi/toml", version="v1.6.0", package="./cmd/tomlv"
)


@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")
def test_a_go_tool_builds_from_a_copy_of_its_module_then_is_reused(module: Path) -> None:
    target = ensure_go_tool(TOMLV)
    assert target == tool_path(TOMLV) == module.parent / "cache" / "tomlv-v1.6.0"
    assert os.access(target, os.X_OK)
    # Nothing half-written and no copy of the module left behind.
    assert sorted(p.name for p in target.parent.iterdir()) == [
        "tomlv-v1.6.0",
        "tomlv-v1.6.0.build.log",
        "tomlv.lock",
    ]
    mtime = target.stat().st_mtime_ns
    assert ensure_go_tool(TOMLV) == target
    assert target.stat().st_mtime_ns == mtime


@pytest.mark.skipif(shutil.which("go") is None, reason="no Go toolchain")
def test_a_go_tool_copies_only_the_entries_it_names(module: Path) -> None:
    # The package's sources are not among them: the build fails, naming the step and the log.
    partial = dataclasses.replace(TOMLV, copy=("go.mod", "cmd"))
    with pytest.raises(ClusterError) as err:
        ensure_go_tool(partial)
    message = str(err.value)
    assert "step 'go build ./cmd/tomlv' of github.com/BurntSushi/toml@v1.6.0 failed" in message
    log = Path(message.rsplit("see the log: ", 1)[1])
    assert "$ (cd " in log.read_text()
    assert not tool_path(partial).exists()
