"""testcluster.gotool: the cache key and the version stamps of the Go tools we build (pure parts;
the real build runs in tests/integration/test_helm_chart.py through its `helm_binary` fixture)."""

from __future__ import annotations

from pathlib import Path

from testcluster.gotool import HELM, tool_path


def test_the_cache_is_keyed_by_tool_and_exact_version(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("EMBEDDING_OPERATOR_CACHE", str(tmp_path))
    assert tool_path(HELM) == tmp_path / "helm-v3.22.0"
    assert HELM.module == "helm.sh/helm/v3" and HELM.version == "v3.22.0"


def test_helm_is_stamped_like_its_own_release_build(tmp_path: Path):
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
