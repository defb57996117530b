"""testcluster.gobuild, the one builder of the Go binaries we make, and gotool's table of them:
the cache key, lock and log of every binary (they must not move: a moved key means a 15-30 minute
rebuild on every machine), a warm cache that never runs `go`, and the version stamps (pure parts;
real builds run in tests/integration/test_testcluster_build.py and the fixtures that need them)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from testcluster import ClusterError, argocd, build, gobuild, kserve
from testcluster.argocd import ARGOCD
from testcluster.gobuild import tool_lock, tool_path
from testcluster.gotool import HELM
from testcluster.kserve import KSERVE


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("EMBEDDING_OPERATOR_CACHE", str(tmp_path))
    for name in ("TESTCLUSTER_BIN", "ARGOCD_BIN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_every_cache_entry_keeps_its_path_lock_and_log(cache: Path) -> None:
    # The layout the caches on existing machines have (`ls ~/.cache/embedding-operator`).
    assert tool_path(HELM) == cache / "helm-v3.22.0"
    assert tool_lock(HELM) == cache / "helm.lock"
    assert tool_path(ARGOCD) == argocd.binary_path() == cache / "argocd-v3.2.11"
    assert tool_lock(ARGOCD) == cache / "argocd.lock"
    assert tool_path(KSERVE) == kserve.controller_binary() == cache / "kserve-v0.20.0" / "manager"
    assert kserve.kserve_dir() == cache / "kserve-v0.20.0"
    # The controller's build and the manifests' copy share the entry's one lock.
    assert tool_lock(KSERVE) == cache / "kserve-v0.20.0.lock"
    assert (HELM.module, ARGOCD.module, KSERVE.module) == (
        "helm.sh/helm/v3",
        "github.com/argoproj/argo-cd/v3",
        "github.com/kserve/kserve",
    )
    assert build.binary_path().parent == cache
    assert build.binary_path().name == f"testcluster-{build.source_hash()}"


def _no_go() -> str:
    raise AssertionError("a warm cache ran the go command")


@pytest.mark.parametrize(
    "ensure",
    [
        lambda: gobuild.ensure_go_tool(HELM),
        lambda: argocd.ensure_binary(quiet=True),
        lambda: kserve.ensure_controller(quiet=True),
        lambda: build.ensure_binary(quiet=True),
    ],
    ids=["helm", "argocd", "kserve", "testcluster"],
)
def test_a_warm_cache_returns_the_binary_without_go(
    cache: Path, monkeypatch: pytest.MonkeyPatch, ensure: Callable[[], Path]
) -> None:
    paths = [tool_path(t) for t in (HELM, ARGOCD, KSERVE)] + [build.binary_path()]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"#!/bin/sh\n")
        path.chmod(0o755)
    (kserve.kserve_dir() / "assets.ok").write_text("cached\n")
    monkeypatch.setattr(gobuild, "go_executable", _no_go)
    before = sorted(os.listdir(cache))
    assert ensure() in paths
    assert sorted(os.listdir(cache)) == before  # not even a lock file or a log was written


def test_a_failed_build_names_the_step_and_the_log_and_leaves_no_binary(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(out: Path, log: Path) -> None:
        out.write_bytes(b"half")
        log.write_text("compiler: no\n")
        raise ClusterError(f"step 'go build' of x failed (exit 1); see the log: {log}")

    target = cache / "tool-v1"
    with pytest.raises(ClusterError, match=r"see the log: .*tool-v1\.build\.log"):
        gobuild.ensure_built(
            target, lock=cache / "tool.lock", what="tool", build=failing, quiet=True
        )
    assert not target.exists()
    assert sorted(p.name for p in cache.iterdir()) == ["tool-v1.build.log", "tool.lock"]


def test_helm_is_stamped_like_its_own_release_build(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text(
        "module helm.sh/helm/v3\n\ngo 1.26.0\n\nrequire (\n\tk8s.io/client-go v0.37.1\n)\n"
    )
    flags = HELM.ldflags(tmp_path)
    assert flags.startswith("-s -w ")
    assert "-X helm.sh/helm/v3/internal/version.version=v3.22.0" in flags
    # The Kubernetes version helm lint/template assume without a cluster: from its client-go.
    assert "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37" in flags
    assert "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1" in flags
    (tmp_path / "go.mod").write_text("module helm.sh/helm/v3\n")
    assert "k8sVersion" not in HELM.ldflags(tmp_path)


def test_argocd_and_kserve_are_stamped_as_before(tmp_path: Path) -> None:
    assert (
        ARGOCD.ldflags(tmp_path) == "-s -w -X github.com/argoproj/argo-cd/v3/common.version=3.2.11"
    )
    assert KSERVE.ldflags(tmp_path) == "-s -w"
