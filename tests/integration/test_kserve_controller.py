"""KServe's own controller (v0.20.0, built from its Go module) on the node cluster: its webhooks
answer on 127.0.0.1 with the harness's CA, and a Standard-mode InferenceService becomes a
Deployment whose pod really runs, and Ready.

Uses the tiny probe image (no model): the serving image's path is tests/e2e/test_kserve_node.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from testcluster import kserve as kserve_mod
from tests.fixtures.cluster import Kubectl, wait_until

pytestmark = pytest.mark.integration


def isvc(name: str, image: str, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "annotations": {"serving.kserve.io/deploymentMode": "Standard", **annotations},
        },
        "spec": {
            "predictor": {
                "minReplicas": 1,
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": ["serve"],
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    }
                ],
            }
        },
    }


def test_standard_mode_runs_a_predictor_pod_and_reports_ready(
    kserve_controller: kserve_mod.Controller,
    node_kubectl: Kubectl,
    node_namespace: str,
    probe_image: str,
) -> None:
    kubectl, ns = node_kubectl, node_namespace
    kubectl.apply(isvc("probe", probe_image), "--validate=false", "-n", ns)

    def ready() -> dict[str, Any] | None:
        obj = kubectl.json("get", "inferenceservice", "probe", "-n", ns)
        conditions = {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions", [])}
        return obj if conditions.get("Ready") == "True" else None

    obj = wait_until(ready, what="InferenceService probe Ready", timeout=180)
    deployment = kubectl.json("get", "deployment", "probe-predictor", "-n", ns)
    assert deployment["status"]["readyReplicas"] == 1
    assert obj["status"]["deploymentMode"] == "Standard"
    assert obj["status"]["address"]["url"] == f"http://probe-predictor.{ns}.svc.cluster.local"
    assert kubectl.exists("service", "probe-predictor", "-n", ns)
    # disableIngressCreation: no Ingress, and no Istio VirtualService API to write one to
    assert not kubectl.json("get", "ingress", "-n", ns)["items"]


def test_webhooks_are_served_on_loopback(
    kserve_controller: kserve_mod.Controller, node_kubectl: Kubectl, node_namespace: str
) -> None:
    bad = isvc("bad", "localhost/none:1", **{"serving.kserve.io/autoscalerClass": "sideways"})
    proc = node_kubectl(
        "apply", "--server-side", "--field-manager=tests", "--validate=false",
        "-n", node_namespace, "-f", "-",
        input=json.dumps(bad), check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    # KServe's own validator, called by the API server on https://127.0.0.1:<port>/validate-…
    assert "admission webhook" in proc.stderr, proc.stderr
    assert "[sideways] is not a supported autoscaler class type" in proc.stderr, proc.stderr
