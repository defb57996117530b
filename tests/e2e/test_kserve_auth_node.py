"""spec.kserve.auth on a real predictor pod: KServe's own controller makes the pod from our
InferenceService, the kubelet puts the Secret's key into its environment (secretKeyRef), and
the serving image enforces it. A request without the key gets 401, with it 200 and a 384-dim
embedding; a new key in the Secret rolls the pod, after which only the new key works.

The operator runs as a host process here (tests/e2e/test_install_node.py runs it as a pod);
the requests go to the pod's IP, which this machine routes to over the node's bridge. The
operator-side wiring (the serving check and `embedding-operator embed` sending the key, the
401 hint) is tests/integration/test_kserve_auth.py. One model, two pod starts (initial, rotation).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from embedding_operator.plan.kserve import API_KEY_ENV, API_KEY_VERSION_ANNOTATION
from testcluster import Cluster
from testcluster import kserve as kserve_mod
from tests.fixtures import kserve_example as kx
from tests.fixtures.cluster import Kubectl, wait_until
from tests.fixtures.images import SERVED_NAME
from tests.fixtures.kserve_example import check_auth_enforced
from tests.fixtures.operator import OperatorProcess, install_crd

pytestmark = [pytest.mark.slow, pytest.mark.integration]

NAMESPACE = "kauth-e2e"
PV = "models-auth"
SECRET = "minilm-api-key"
KEY_1 = "k1-" + "a" * 40
KEY_2 = "k2-" + "b" * 40


@pytest.fixture(scope="module")
def operator(
    node_cluster: Cluster,
    node_kubectl: Kubectl,
    kserve_controller: kserve_mod.Controller,
    node_serving_image: str,
    minilm_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    kubectl = node_kubectl
    install_crd(kubectl)
    kubectl("create", "namespace", NAMESPACE)
    kx.model_volume(kubectl, NAMESPACE, minilm_dir, PV)
    log = tmp_path_factory.mktemp("kserve-auth") / "operator.log"
    process = OperatorProcess(str(node_cluster.kubeconfig), [NAMESPACE], log, {})
    process.start()
    try:
        yield process
    finally:
        kubectl("delete", "emb", "minilm", "-n", NAMESPACE, "--ignore-not-found",
                "--timeout=60s", check=False)  # fmt: skip
        process.stop()
        kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        kubectl("delete", "pv", PV, "--wait=false", check=False)


def the_predictor(kubectl: Kubectl, other_than: str = "") -> dict[str, Any]:
    """The one live, Ready predictor pod (not `other_than`), once the roll-out has settled."""

    def settled() -> dict[str, Any] | None:
        pods = kx.predictor_pods(kubectl, NAMESPACE, "minilm")
        if len(pods) != 1 or kx.terminating(pods[0]) or not kx.pod_ready(pods[0]):
            return None
        return pods[0] if pods[0]["metadata"]["name"] != other_than else None

    return wait_until(settled, what="one Ready predictor pod", timeout=600, interval=1)


def test_real_predictor_pod_requires_the_key_and_picks_up_a_rotation(
    operator: OperatorProcess, node_kubectl: Kubectl
) -> None:
    kubectl = node_kubectl
    version_1 = kx.put_api_key(kubectl, NAMESPACE, SECRET, KEY_1)
    doc = kx.example(NAMESPACE)
    doc["spec"]["kserve"]["auth"] = {"apiKeySecretRef": {"name": SECRET}}
    kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(doc))
    proc = kubectl(
        "wait", "-n", NAMESPACE, "--for=condition=Ready", "--timeout=600s", "emb/minilm",
        check=False, timeout=620,
    )  # fmt: skip
    assert proc.returncode == 0, operator.logs()[-3000:] + proc.stderr

    # The key reaches the pod only through the secretKeyRef, never as text in an object.
    pod = the_predictor(kubectl)
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env[API_KEY_ENV]["valueFrom"] == {"secretKeyRef": {"name": SECRET, "key": "apiKey"}}
    assert KEY_1 not in json.dumps(pod)
    isvc = kubectl.json("get", "inferenceservice", "minilm", "-n", NAMESPACE)
    assert KEY_1 not in json.dumps(isvc)
    assert isvc["spec"]["predictor"]["annotations"][API_KEY_VERSION_ANNOTATION] == version_1
    check_auth_enforced(kx.pod_url(pod), KEY_1)

    # Rotation: the operator sees the Secret's new version, KServe rolls the pod, and the new
    # pod takes only the new key.
    started = time.monotonic()
    version_2 = kx.put_api_key(kubectl, NAMESPACE, SECRET, KEY_2)
    rolled = the_predictor(kubectl, other_than=pod["metadata"]["name"])
    print(f"Secret rotation -> new predictor pod Ready: {time.monotonic() - started:.0f}s")
    isvc = kubectl.json("get", "inferenceservice", "minilm", "-n", NAMESPACE)
    assert isvc["spec"]["predictor"]["annotations"][API_KEY_VERSION_ANNOTATION] == version_2
    check_auth_enforced(kx.pod_url(rolled), KEY_2)
    old_key = httpx.post(
        f"{kx.pod_url(rolled)}/embeddings",
        json={"model": SERVED_NAME, "input": ["old key"]},
        headers={"Authorization": f"Bearer {KEY_1}"},
        timeout=60,
    )
    assert old_key.status_code == 401, old_key.text
    kx.wait_emb(kubectl, NAMESPACE, "minilm", "Ready", timeout=120)
    logs = operator.logs()
    assert KEY_1 not in logs and KEY_2 not in logs, "the operator logged an API key"
