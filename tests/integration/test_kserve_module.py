"""KServe's artifacts come from its own Go module (no copy beside the repository): fetched with `go
mod download`, copied once into the project cache, keyed by version."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from testcluster import ClusterError, kserve

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Go's own module cache stays warm: only the project cache is fresh.
    monkeypatch.setenv("EMBEDDING_OPERATOR_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_assets_are_the_modules_crds_configmap_and_webhooks(fresh_cache: Path) -> None:
    root = kserve.ensure_assets()
    assert root == fresh_cache / f"kserve-{kserve.VERSION}"
    (isvc,) = kserve.crd_files(plurals=("inferenceservices",))
    crd = yaml.load(isvc.read_text(), Loader=yaml.CSafeLoader)  # 2 MB: the C loader
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "inferenceservices.serving.kserve.io"
    assert [v["name"] for v in crd["spec"]["versions"] if v["served"]] == ["v1beta1"]
    names = {re.search(r"(?m)^  name: (\S+)", f.read_text())[1] for f in kserve.crd_files()}  # type: ignore[index]
    assert len(names) == len(kserve.CRD_FILES)
    assert all(name.endswith(".serving.kserve.io") for name in names)
    configmap = yaml.safe_load((root / kserve.CONFIGMAP_FILE).read_text())
    assert configmap["metadata"]["name"] == "inferenceservice-config"
    assert "deploy" in configmap["data"] and "ingress" in configmap["data"]
    webhooks = list(yaml.safe_load_all((root / kserve.WEBHOOK_FILE).read_text()))
    assert {w["kind"] for w in webhooks if w} >= {
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }


def test_cached_assets_are_reused_without_go(
    fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kserve.ensure_assets()
    monkeypatch.setenv("GO", "/nonexistent/go")  # a second call must not need the Go toolchain
    monkeypatch.setenv("PATH", "/nonexistent")
    assert kserve.crd_files(plurals=("servingruntimes",))[0].is_file()


def test_unknown_crd_is_a_clear_error(fresh_cache: Path) -> None:
    with pytest.raises(ClusterError, match=r"no KServe CRD file serving.kserve.io_widgets.yaml"):
        kserve.crd_files(plurals=("widgets",))


def test_unknown_version_names_the_step(fresh_cache: Path) -> None:
    with pytest.raises(ClusterError, match=r"go mod download github.com/kserve/kserve@v0.0.0-nope"):
        kserve.ensure_assets("v0.0.0-nope")
