"""KServe's artifacts come from its own Go module (no copy beside the repository): fetched with `go
mod download`, copied once into the project cache, keyed by version."""

from __future__ import annotations

import json
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


def test_configmap_is_adapted_for_standard_mode_without_ingress(fresh_cache: Path) -> None:
    text = (kserve.ensure_assets() / kserve.CONFIGMAP_FILE).read_text()
    configmap = kserve.adapted_configmap(text)
    assert configmap["metadata"] == {"name": "inferenceservice-config", "namespace": "kserve"}
    data = configmap["data"]
    assert json.loads(data["deploy"])["defaultDeploymentMode"] == "Standard"
    ingress = json.loads(data["ingress"])
    assert ingress["disableIstioVirtualHost"] is True
    assert ingress["disableIngressCreation"] is True
    assert ingress["ingressDomain"] == "example.com"  # the rest stays KServe's default
    assert json.loads(data["storageInitializer"]) == json.loads(
        yaml.safe_load(text)["data"]["storageInitializer"]
    )


def test_webhooks_call_loopback_with_the_harness_ca(fresh_cache: Path) -> None:
    text = (kserve.ensure_assets() / kserve.WEBHOOK_FILE).read_text()
    hooks = kserve.webhook_configurations(text, port=19443, ca_pem=b"PEM")
    names = {h["metadata"]["name"] for h in hooks}
    assert "inferenceservice.serving.kserve.io" in names
    urls = [w["clientConfig"]["url"] for h in hooks for w in h["webhooks"]]
    assert "https://127.0.0.1:19443/mutate-serving-kserve-io-v1beta1-inferenceservice" in urls
    assert "https://127.0.0.1:19443/mutate-pods" in urls
    assert all(u.startswith("https://127.0.0.1:19443/") for u in urls)
    assert {w["clientConfig"]["caBundle"] for h in hooks for w in h["webhooks"]} == {"UEVN"}
