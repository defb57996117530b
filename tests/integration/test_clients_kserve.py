"""`embedding-operator embed` for `backend: kserve`, against the real API server.

No KServe and no operator run here: the test writes the EmbeddingModel status the operator would
(Ready, `status.endpoint`) through the status subresource, pointing at a loopback server with
infinity's embedding API, and runs the CLI in-process.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from embedding_operator.cli import main
from tests.fixtures.cluster import Kubectl
from tests.fixtures.infinity import FakeInfinity

pytestmark = pytest.mark.integration


def condition(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 1,
    }


def create(kubectl: Kubectl, namespace: str, name: str, status: dict[str, Any]) -> None:
    kubectl.apply(
        {
            "apiVersion": "embeddings.ai/v1alpha1",
            "kind": "EmbeddingModel",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "backend": "kserve",
                "model": {"name": "minilm", "uri": "hf://sentence-transformers/all-MiniLM-L6-v2"},
            },
        }
    )
    kubectl(
        "patch", "emb", name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def embed(kubeconfig: str, namespace: str, *args: str) -> list[str]:
    return ["embed", "--kubeconfig", kubeconfig, "-n", namespace, *args]


def test_embed_calls_the_kserve_endpoint(
    kubectl: Kubectl,
    kubeconfig: str,
    crd: str,
    namespace: str,
    fake_infinity: FakeInfinity,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ready = condition("Ready", "True", "ServingVerified")
    create(kubectl, namespace, "m", {"conditions": [ready], "endpoint": f"{fake_infinity.url}/v1"})

    assert main(embed(kubeconfig, namespace, "m", "hello", "world")) == 0
    assert capsys.readouterr().out == "2 vectors x 384 dimensions\n"
    assert fake_infinity.requests[-1]["model"] == "minilm"
    assert fake_infinity.requests[-1]["input"] == ["hello", "world"]

    assert main(embed(kubeconfig, namespace, "m", "-o", "json", "hello")) == 0
    response = json.loads(capsys.readouterr().out)
    assert response["model"] == "minilm" and len(response["data"][0]["embedding"]) == 384

    fake_infinity.status = 500
    assert main(embed(kubeconfig, namespace, "m", "hello")) == 1
    err = capsys.readouterr().err
    assert f"{fake_infinity.url}/v1/embeddings answered HTTP 500" in err and "boom" in err


def test_embed_explains_unreachable_and_missing_endpoints(
    kubectl: Kubectl,
    kubeconfig: str,
    crd: str,
    namespace: str,
    fake_infinity: FakeInfinity,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ready = condition("Ready", "True", "ServingVerified")
    # What KServe publishes: a cluster-internal name this machine cannot resolve.
    internal = f"http://m.{namespace}.svc.cluster.local/v1"
    create(kubectl, namespace, "internal", {"conditions": [ready], "endpoint": internal})
    assert main(embed(kubeconfig, namespace, "internal", "hello")) == 1
    err = capsys.readouterr().err
    assert f"cannot reach {internal}/embeddings" in err and "kubectl port-forward" in err

    # ... which --endpoint replaces (e.g. with a port-forward's local address).
    local = ["--endpoint", f"{fake_infinity.url}/v1"]
    assert main(embed(kubeconfig, namespace, "internal", *local, "hello")) == 0
    assert capsys.readouterr().out == "1 vector x 384 dimensions\n"

    create(kubectl, namespace, "no-endpoint", {"conditions": [ready]})
    assert main(embed(kubeconfig, namespace, "no-endpoint", "hello")) == 1
    assert "is Ready but has no status.endpoint" in capsys.readouterr().err

    waiting = condition("Ready", "False", "InferenceServiceNotReady", "predictor pods pending")
    create(kubectl, namespace, "waiting", {"conditions": [waiting]})
    assert main(embed(kubeconfig, namespace, "waiting", "hello")) == 1
    err = capsys.readouterr().err
    assert "reason InferenceServiceNotReady: predictor pods pending" in err
    assert f"kubectl wait --for=condition=Ready emb/waiting -n {namespace}" in err
