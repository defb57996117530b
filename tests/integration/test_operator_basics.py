"""The operator as a process against the real API server: start, pick up, report, stop cleanly."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from tests.fixtures.manifests import embedding_model
from tests.fixtures.operator import wait_for_condition

pytestmark = pytest.mark.integration


def aicore_model(name: str = "m", secret: str = "aicore-key") -> dict:
    return embedding_model(name, secret=secret)


def test_operator_picks_up_existing_object_reports_and_stops_cleanly(
    kubectl, namespace, start_operator
):
    # The object exists before the operator starts (as after an operator upgrade).
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(aicore_model()))
    before = kubectl.json("get", "emb", "m", "-n", namespace)
    assert "status" not in before

    operator = start_operator(namespace)
    obj = wait_for_condition(kubectl, namespace, "m", "Stalled")
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["phase"] == "Failed"
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "SecretNotFound"
    assert f"Secret {namespace}/aicore-key not found" in stalled["message"]
    assert "kubectl create secret generic aicore-key" in stalled["message"]
    types = {c["type"]: c["status"] for c in status["conditions"]}
    assert types == {"Ready": "False", "Reconciling": "False", "Stalled": "True"}

    # Our finalizer and annotation prefix, not kopf's defaults; spec untouched.
    meta = obj["metadata"]
    assert "embeddings.ai/finalizer" in meta["finalizers"]
    assert not any("kopf.zalando.org" in k for k in meta.get("annotations", {}))
    assert obj["spec"] == before["spec"]

    events = kubectl.json("get", "events", "-n", namespace)["items"]
    assert any(e["reason"] == "SecretNotFound" and e["type"] == "Warning" for e in events)

    assert operator.stop() == 0
    assert "Traceback" not in operator.logs()


def test_recovers_when_the_secret_appears_without_touching_the_object(
    kubectl, namespace, start_operator
):
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(aicore_model()))
    start_operator(namespace)
    wait_for_condition(kubectl, namespace, "m", "Stalled")
    generation = kubectl.json("get", "emb", "m", "-n", namespace)["metadata"]["generation"]

    # A Secret with an unusable key: the message names the problem, never the content.
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "aicore-key"},
        "data": {
            "serviceKey": base64.b64encode(
                b'{"clientid": "x", "clientsecret": "s3cr3t-value"}'
            ).decode()
        },
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(secret))

    def reason_is(wanted: str):
        obj = kubectl.json("get", "emb", "m", "-n", namespace)
        stalled = next(
            (c for c in obj.get("status", {}).get("conditions", []) if c["type"] == "Stalled"), None
        )
        return obj if stalled and stalled["reason"] == wanted else None

    from tests.fixtures.cluster import wait_until

    obj = wait_until(lambda: reason_is("ServiceKeyInvalid"), what="ServiceKeyInvalid", timeout=30)
    message = next(c for c in obj["status"]["conditions"] if c["type"] == "Stalled")["message"]
    assert "serviceKey" in message and "url" in message
    assert "s3cr3t-value" not in json.dumps(obj)
    assert obj["metadata"]["generation"] == generation  # recovered by itself: no edit needed


def test_operator_exits_with_the_fix_when_the_crd_is_missing(tmp_path):
    """Without its CRD kopf would idle, live but blind; the operator must say what to do."""
    import subprocess
    import sys

    from testcluster import Cluster
    from tests.fixtures.cluster import REPO_ROOT

    with Cluster(tmp_path / "bare", log_dir=tmp_path / "logs") as bare:
        proc = subprocess.run(
            [sys.executable, "-m", "embedding_operator", "run", "--metrics-port=0",
             "--liveness=http://127.0.0.1:0/healthz"],
            env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(bare.kubeconfig),
                 "PYTHONPATH": str(REPO_ROOT / "operator")},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode != 0
    assert "the CRD embeddingmodels.embeddings.ai is not installed: kubectl apply" in proc.stderr
