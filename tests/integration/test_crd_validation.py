"""The CRD, installed in a real API server, accepts good objects and rejects bad ones with a
message that names the field — what a user sees at `kubectl apply` time."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from tests.fixtures.cluster import REPO_ROOT
from tests.fixtures.manifests import embedding_model

pytestmark = pytest.mark.integration

EXAMPLES = sorted((REPO_ROOT / "manifests" / "examples").glob("*.yaml"))

AICORE = embedding_model("good", uri="ai://default/models/minilm", secret="aicore")
KSERVE = embedding_model("good", backend="kserve")


def variant(base: dict, path: str, value: object) -> dict:
    """Copy of `base` with the dotted `path` set to `value` (or removed for DELETE)."""
    obj = copy.deepcopy(base)
    *parents, leaf = path.split(".")
    node = obj
    for key in parents:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return obj


DELETE = object()

# (id, object, substrings the API server's error must contain)
INVALID = [
    ("missing-backend", variant(AICORE, "spec.backend", DELETE), ["spec.backend", "Required"]),
    ("unknown-backend", variant(AICORE, "spec.backend", "sagemaker"), ["spec.backend", "aicore"]),
    ("missing-model-name", variant(AICORE, "spec.model.name", DELETE), ["spec.model.name"]),
    ("missing-model-uri", variant(AICORE, "spec.model.uri", DELETE), ["spec.model.uri"]),
    (
        "aicore-with-hf-uri",
        variant(AICORE, "spec.model.uri", "hf://org/model"),
        ["spec.model.uri", "ai://"],
    ),
    (
        "kserve-with-ai-uri",
        variant(KSERVE, "spec.model.uri", "ai://default/m"),
        ["spec.model.uri", "hf://"],
    ),
    (
        "unknown-uri-scheme",
        variant(KSERVE, "spec.model.uri", "ftp://host/model"),
        ["spec.model.uri"],
    ),
    (
        "uri-trailing-slash",
        variant(AICORE, "spec.model.uri", "ai://default/models/"),
        ["spec.model.uri"],
    ),
    (
        "batch-size-zero",
        variant(AICORE, "spec.serving", {"batchSize": 0}),
        ["spec.serving.batchSize", "1"],
    ),
    (
        "batch-size-huge",
        variant(AICORE, "spec.serving", {"batchSize": 100000}),
        ["spec.serving.batchSize", "4096"],
    ),
    (
        "min-greater-than-max",
        variant(AICORE, "spec.replicas", {"min": 3, "max": 2}),
        ["spec.replicas.min must be <= spec.replicas.max"],
    ),
    ("negative-replicas", variant(AICORE, "spec.replicas", {"min": -1}), ["spec.replicas.min"]),
    (
        "aicore-section-missing",
        variant(AICORE, "spec.aicore", DELETE),
        ["spec.aicore is required", "secretRef"],
    ),
    (
        "aicore-section-on-kserve",
        variant(KSERVE, "spec.aicore", {"secretRef": {"name": "x"}}),
        ["spec.aicore is only valid"],
    ),
    (
        "kserve-section-on-aicore",
        variant(AICORE, "spec.kserve", {"gpus": 1}),
        ["spec.kserve is only valid"],
    ),
    (
        "url-prefix-no-slash",
        variant(AICORE, "spec.serving", {"urlPrefix": "v1"}),
        ["spec.serving.urlPrefix"],
    ),
    (
        "url-prefix-trailing-slash",
        variant(AICORE, "spec.serving", {"urlPrefix": "/v1/"}),
        ["spec.serving.urlPrefix"],
    ),
    ("bad-ttl", variant(AICORE, "spec.aicore.ttl", "2 weeks"), ["spec.aicore.ttl"]),
    ("unknown-field", variant(AICORE, "spec.replica", 2), ['unknown field "spec.replica"']),
    (
        "unknown-nested-field",
        variant(AICORE, "spec.model.dims", 384),
        ['unknown field "spec.model.dims"'],
    ),
    (
        "name-too-long",
        variant(AICORE, "metadata.name", "a" * 41),
        ["metadata.name must be at most 40"],
    ),
    (
        "unknown-engine",
        variant(AICORE, "spec.serving", {"engine": "vllm"}),
        ["spec.serving.engine"],
    ),
    ("unknown-pooling", variant(AICORE, "spec.model.pooling", "max"), ["spec.model.pooling"]),
    ("zero-dimensions", variant(AICORE, "spec.model.dimensions", 0), ["spec.model.dimensions"]),
    (
        "env-on-aicore",
        variant(AICORE, "spec.serving", {"env": [{"name": "A", "value": "b"}]}),
        ["spec.serving.env is not supported"],
    ),
    (
        "bad-env-name",
        variant(KSERVE, "spec.serving", {"env": [{"name": "1A", "value": "b"}]}),
        ["spec.serving.env[0].name"],
    ),
    (
        "quote-in-args",
        variant(AICORE, "spec.serving", {"args": ['--x="y"']}),
        ["spec.serving.args[0]"],
    ),
    (
        "bad-secret-name",
        variant(AICORE, "spec.aicore.secretRef.name", "Bad_Name"),
        ["spec.aicore.secretRef.name"],
    ),
    (
        "bad-deletion-policy",
        variant(AICORE, "spec.aicore.deletionPolicy", "Keep"),
        ["spec.aicore.deletionPolicy"],
    ),
    (
        "bad-deployment-mode",
        variant(KSERVE, "spec.kserve", {"deploymentMode": "ModelMesh"}),
        ["spec.kserve.deploymentMode"],
    ),
    ("negative-gpus", variant(KSERVE, "spec.kserve", {"gpus": -1}), ["spec.kserve.gpus"]),
    (
        "bad-toleration-effect",
        variant(KSERVE, "spec.kserve", {"tolerations": [{"key": "a", "effect": "Never"}]}),
        ["spec.kserve.tolerations[0].effect"],
    ),
    ("suspend-not-bool", variant(AICORE, "spec.suspend", "yes"), ["spec.suspend"]),
    (
        "bad-resource-quantity",
        variant(KSERVE, "spec.kserve", {"resources": {"requests": {"cpu": "lots"}}}),
        ["spec.kserve.resources.requests.cpu"],
    ),
    # Issue 15 item 5: inputs the API server used to accept but the operator could not serve.
    (
        "apostrophe-in-args",
        variant(AICORE, "spec.serving", {"args": ["--name=it's"]}),
        ["spec.serving.args[0]"],
    ),
    (
        "args-too-long-together",
        variant(AICORE, "spec.serving", {"args": ["x" * 1000] * 5}),
        ["spec.serving.args is over 4000 characters"],
    ),
    (
        "quote-in-image",
        variant(AICORE, "spec.serving", {"image": 'registry/infinity:1"'}),
        ["spec.serving.image"],
    ),
    (
        "url-prefix-dot-dot",
        variant(AICORE, "spec.serving", {"urlPrefix": "/.."}),
        ["spec.serving.urlPrefix must not contain a '.' or '..' segment"],
    ),
    (
        "url-prefix-inner-dot",
        variant(AICORE, "spec.serving", {"urlPrefix": "/v1/./x"}),
        ["spec.serving.urlPrefix must not contain"],
    ),
    ("ttl-too-long", variant(AICORE, "spec.aicore.ttl", "9" * 40 + "d"), ["spec.aicore.ttl"]),
    (
        "ttl-below-minimum",
        variant(AICORE, "spec.aicore.ttl", "5m"),
        ["spec.aicore.ttl must be at least 10m"],
    ),
    (
        "uri-too-long",
        variant(AICORE, "spec.model.uri", "ai://default/" + "m" * 1020),
        ["spec.model.uri"],
    ),
    (
        "uri-segment-too-long",
        variant(AICORE, "spec.model.uri", "ai://default/" + "m" * 300),
        ["spec.model.uri has a path segment over 255 characters"],
    ),
    (
        "uri-dot-dot",
        variant(AICORE, "spec.model.uri", "ai://default/models/../../etc"),
        ["spec.model.uri must not contain a '.' or '..' path segment"],
    ),
    (
        "toleration-exists-with-value",
        variant(
            KSERVE,
            "spec.kserve",
            {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "true"}]},
        ),
        ["spec.kserve.tolerations[0]", "operator Exists matches any value"],
    ),
    (
        "toleration-equal-without-key",
        variant(KSERVE, "spec.kserve", {"tolerations": [{"operator": "Equal", "value": "a"}]}),
        ["spec.kserve.tolerations[0]", "without key must use operator Exists"],
    ),
    (
        "negative-cpu-limit",
        variant(KSERVE, "spec.kserve", {"resources": {"limits": {"cpu": "-1"}}}),
        ["spec.kserve.resources.limits.cpu"],
    ),
    (
        "gpu-in-limits",
        variant(KSERVE, "spec.kserve", {"gpus": 1, "resources": {"limits": {"nvidia.com/gpu": 2}}}),
        ["spec.kserve.resources", "must not set nvidia.com/gpu", "spec.kserve.gpus"],
    ),
]


@pytest.mark.parametrize(
    "obj,expected", [(o, e) for _, o, e in INVALID], ids=[i for i, _, _ in INVALID]
)
def test_invalid_object_is_rejected_naming_the_field(kubectl, crd, namespace, obj, expected):
    proc = kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj), check=False)
    assert proc.returncode != 0, f"accepted an invalid object: {obj['spec']}"
    for text in expected:
        assert text in proc.stderr, f"{text!r} not in the API server's message:\n{proc.stderr}"


# Values at the edge of the rules above, which must still be accepted.
VALID = [
    (
        "image-with-digest",
        variant(AICORE, "spec.serving.image", "r.io:5000/inf:1@sha256:" + "a" * 64),
    ),
    ("ttl-minimum", variant(AICORE, "spec.aicore.ttl", "10m")),
    ("ttl-days", variant(AICORE, "spec.aicore.ttl", "9999D")),
    ("dotted-uri", variant(AICORE, "spec.model.uri", "ai://default/models/v1.5/.cache-free")),
    ("dotted-prefix", variant(AICORE, "spec.serving.urlPrefix", "/v1/.well.known")),
    ("args-with-spaces", variant(AICORE, "spec.serving.args", ["--device", "cpu", "a b"])),
    (
        "toleration-exists-no-key",
        variant(KSERVE, "spec.kserve", {"tolerations": [{"operator": "Exists"}]}),
    ),
    (
        "gpus-field",
        variant(KSERVE, "spec.kserve", {"gpus": 1, "resources": {"limits": {"cpu": 2}}}),
    ),
]


@pytest.mark.parametrize("obj", [o for _, o in VALID], ids=[i for i, _ in VALID])
def test_edge_values_are_accepted(kubectl, crd, namespace, obj):
    kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_accepted(kubectl, crd, namespace, path: Path):
    kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path))
    kubectl("apply", "-n", namespace, "-f", str(path))


def test_there_is_an_example_per_backend():
    backends = {yaml.safe_load(p.read_text())["spec"]["backend"] for p in EXAMPLES}
    assert backends == {"aicore", "kserve"}


def test_defaults_are_applied_by_the_api_server(kubectl, crd, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(KSERVE))
    spec = kubectl.json("get", "emb", "good", "-n", namespace)["spec"]
    assert spec["serving"]["batchSize"] == 32
    assert spec["serving"]["urlPrefix"] == "/v1"
    assert spec["replicas"] == {"min": 1, "max": 1}
    assert spec["suspend"] is False
    assert spec["model"]["pooling"] == "auto"


def test_backend_is_immutable(kubectl, crd, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(KSERVE))
    changed = variant(AICORE, "metadata.name", "good")
    proc = kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(changed), check=False)
    assert proc.returncode != 0
    assert "spec.backend is immutable" in proc.stderr


def test_ai_core_placement_is_immutable(kubectl, crd, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(AICORE))
    moved = variant(AICORE, "spec.aicore.resourceGroup", "team-b")
    proc = kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(moved), check=False)
    assert proc.returncode != 0
    assert "spec.aicore.resourceGroup is immutable" in proc.stderr


def test_explain_prints_field_descriptions(kubectl, crd):
    out = kubectl("explain", "emb.spec.model").stdout
    assert "Served model name" in out
    assert "ai://<objectStoreSecret>/<path>" in out


def test_get_shows_printer_columns(kubectl, crd, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(KSERVE))
    header = kubectl("get", "emb", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "BACKEND", "MODEL", "READY", "PHASE", "ENDPOINT", "AGE"]
    wide = kubectl("get", "emb", "-n", namespace, "-o", "wide").stdout.splitlines()[0].split()
    assert "DIMS" in wide and "REASON" in wide
    assert kubectl("get", "ai", "-n", namespace, "-o", "name").stdout.strip() == (
        "embeddingmodel.embeddings.ai/good"
    )
