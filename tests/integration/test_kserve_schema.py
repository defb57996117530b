"""Every InferenceService the operator renders is valid against KServe's own CRD schema.

The golden files (tests/data/kserve/) and the InferenceServices rendered from the KServe examples
(manifests/examples/kserve-*.yaml) go to a real API server with KServe's CRDs installed: once as a
server-side dry run and once as a real create. The examples themselves must be accepted by our
EmbeddingModel CRD.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from embedding_operator.api.spec import parse_spec
from embedding_operator.backends.base import ObjectRef
from embedding_operator.plan.kserve import render
from tests.fixtures.cluster import REPO_ROOT, Kubectl
from tests.fixtures.manifests import ISVC

pytestmark = pytest.mark.integration

GOLDEN = sorted((REPO_ROOT / "tests" / "data" / "kserve").glob("*.yaml"))
EXAMPLES = sorted((REPO_ROOT / "manifests" / "examples").glob("kserve-*.yaml"))


def test_there_are_golden_files_and_examples() -> None:
    assert len(GOLDEN) >= 5
    assert len(EXAMPLES) >= 2


def into(obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The object in the test namespace, without the owner reference to a made-up uid (the
    garbage collector would delete it at once); owner references are covered by
    test_kserve_reconcile.py with real owners."""
    meta = dict(obj["metadata"], namespace=namespace)
    meta.pop("ownerReferences", None)
    return {**obj, "metadata": meta}


def accept(kubectl: Kubectl, obj: dict[str, Any]) -> None:
    """Dry run, then a real create; the API server's own message on failure."""
    text = json.dumps(obj)
    kubectl("create", "--dry-run=server", "-f", "-", input=text)
    kubectl("create", "-f", "-", input=text)
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    stored = kubectl.json("get", ISVC, name, "-n", namespace)
    # Nothing we set was pruned as unknown by the structural schema.
    assert stored["spec"]["predictor"]["containers"] == obj["spec"]["predictor"]["containers"]
    assert stored["metadata"]["annotations"] == obj["metadata"]["annotations"]


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_inference_service_is_accepted(
    path: Path, kubectl: Kubectl, namespace: str, kserve_crds: object
) -> None:
    accept(kubectl, into(yaml.safe_load(path.read_text()), namespace))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_and_its_inference_service_are_accepted(
    path: Path,
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: object,
    crd: str,
) -> None:
    example = yaml.safe_load(path.read_text())
    example["metadata"]["namespace"] = namespace
    text = json.dumps(example)
    kubectl("create", "--dry-run=server", "-f", "-", input=text)
    kubectl("create", "-f", "-", input=text)
    stored = kubectl.json("get", "embeddingmodel", example["metadata"]["name"], "-n", namespace)
    meta = stored["metadata"]
    ref = ObjectRef(meta["name"], namespace, meta["uid"], meta["generation"])
    # With a real owner this time: the GC keeps the child while the owner exists.
    accept(kubectl, render(ref, parse_spec(stored["spec"])))
