"""The local AI Core's kserve runtime on the real node with KServe's own controller (v0.20.0).

The emulator runs with `--runtime kserve` against the session's node cluster: every AI Core
deployment becomes an InferenceService rendered from its ServingTemplate, in the emulator's own
namespace, served by our serving image from the object store volume (ai:// -> pvc://). The
operator drives it as it drives AI Core: artifact -> configuration -> deployment -> Ready with a
verified embedding through the gateway -> batchSize rollout on the same deployment -> suspend ->
delete. The generated ServingTemplate goes through KServe's webhooks and controller unchanged; a
user's nomic-embed style template is accepted too, and one KServe refuses turns the deployment
DEAD with the webhook's message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from aicore_local import launcher
from embedding_operator.serving import DEFAULT_IMAGE
from testcluster import Cluster
from testcluster import kserve as kserve_mod
from tests.fixtures.aicore import OPERATOR_TEMPLATES, LocalAICore, running_aicore
from tests.fixtures.aicore_operator import SECRET, model, owned, remote
from tests.fixtures.cluster import REPO_ROOT, Kubectl, wait_until
from tests.fixtures.images import MINILM_DIMS
from tests.fixtures.operator import OperatorProcess, install_crd, wait_for_condition

pytestmark = [pytest.mark.slow, pytest.mark.integration]

USER_TEMPLATES = REPO_ROOT / "tests" / "data" / "aicore-kserve-templates"
EMULATOR_NAMESPACE = "aicore-kserve"
SEED_URL = "ai://default/models/all-minilm-l6-v2"


@pytest.fixture(scope="module")
def kserve_aicore(
    node_cluster: Cluster,
    node_kubectl: Kubectl,
    kserve_controller: kserve_mod.Controller,
    serving_image: str,
    infinity_venv: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalAICore]:
    """The emulator with the kserve runtime on the node cluster, seeded as `make aicore` does."""
    node_cluster.node.import_podman_image(serving_image, (DEFAULT_IMAGE,))
    try:
        with running_aicore(
            tmp_path_factory.mktemp("aicore-kserve"),
            templates=[OPERATOR_TEMPLATES, USER_TEMPLATES],
            runtime="kserve",
            extra_args=[
                "--kubeconfig", str(node_cluster.kubeconfig),
                "--kserve-namespace", EMULATOR_NAMESPACE,
                "--unknown-seconds", "0.2", "--sync-interval", "0",
            ],
            infinity_venv=infinity_venv,
            stop_timeout=90,
        ) as emulator:  # fmt: skip
            yield emulator
    finally:
        left = node_kubectl.json("get", "inferenceservices", "-n", EMULATOR_NAMESPACE)["items"]
        # NB: the node's teardown checks for leftovers: let the predictor pods finish first.
        wait_until(
            lambda: not node_kubectl.json("get", "pods", "-n", EMULATOR_NAMESPACE)["items"],
            what="the emulator's predictor pods gone",
            timeout=180,
        )
        node_kubectl("delete", "namespace", EMULATOR_NAMESPACE, "--wait=false", check=False)
        # NB: --wait=false: the PV is deleted only once its PVC (in that namespace) is gone.
        node_kubectl(
            "delete", "pv", "-l", "app.kubernetes.io/managed-by=aicore-local", "--wait=false",
            check=False,
        )  # fmt: skip
        assert left == [], "the emulator's shutdown left InferenceServices behind"


def api(aicore: LocalAICore, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(
        method, f"{aicore.url}{path}", json=body, headers=aicore.headers(), timeout=30
    )
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text}"
    return r.json() if r.content else None


def isvc(kubectl: Kubectl, name: str) -> dict[str, Any]:
    found: dict[str, Any] = kubectl.json("get", "inferenceservice", name, "-n", EMULATOR_NAMESPACE)
    return found


def predictor_pods(kubectl: Kubectl, name: str) -> list[dict[str, Any]]:
    selector = f"serving.kserve.io/inferenceservice={name}"
    pods = kubectl.json("get", "pods", "-n", EMULATOR_NAMESPACE, "-l", selector)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def gateway_embedding(aicore: LocalAICore, endpoint: str) -> list[float]:
    r = httpx.post(
        f"{endpoint}/embeddings",
        headers=aicore.headers(),
        json={"model": "all-minilm-l6-v2", "input": ["hello world"]},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    return list(r.json()["data"][0]["embedding"])


def test_operator_ai_core_path_runs_on_real_kserve(
    kserve_aicore: LocalAICore,
    node_cluster: Cluster,
    node_kubectl: Kubectl,
    node_namespace: str,
    tmp_path: Path,
) -> None:
    aicore, kubectl, ns = kserve_aicore, node_kubectl, node_namespace
    install_crd(kubectl)
    kubectl("create", "secret", "generic", SECRET, "-n", ns,
            f"--from-file=serviceKey={aicore.service_key_path}")  # fmt: skip
    operator = OperatorProcess(str(node_cluster.kubeconfig), [ns], tmp_path / "operator.log", {})
    operator.start()
    try:
        started = time.monotonic()
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(model()))
        obj = wait_for_condition(kubectl, ns, "m", "Ready", timeout=600)
        print(f"apply -> Ready through the kserve runtime: {time.monotonic() - started:.0f}s")
        status = obj["status"]
        assert status["serving"]["dimensions"] == MINILM_DIMS and status["serving"]["verified"]
        deployment_id, endpoint = status["aicore"]["deploymentId"], status["endpoint"]
        config_1 = status["aicore"]["configurationId"]

        # The generated template, unchanged, became this InferenceService, run by KServe.
        live = isvc(kubectl, deployment_id)
        assert live["metadata"]["labels"]["ai.sap.com/resourcePlan"] == "starter"
        assert live["metadata"]["annotations"]["autoscaling.knative.dev/target"] == "8"
        assert {c["type"]: c["status"] for c in live["status"]["conditions"]}["Ready"] == "True"
        (pod,) = predictor_pods(kubectl, deployment_id)
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert container["image"] == DEFAULT_IMAGE
        # KServe's storage initializer mounted the PVC and pointed STORAGE_URI at the mount.
        assert env["STORAGE_URI"] == "/mnt/models"
        assert any(m["mountPath"] == "/mnt/models" for m in container["volumeMounts"])
        assert len(gateway_embedding(aicore, endpoint)) == MINILM_DIMS
        logs = api(aicore, "GET", f"/v2/lm/deployments/{deployment_id}/logs")
        assert logs["data"]["result"], "no container log through /logs"

        # batchSize rollout: same deployment and endpoint, a new predictor pod with the change.
        started = time.monotonic()
        kubectl("patch", "emb", "m", "-n", ns, "--type=merge",
                "-p", '{"spec":{"serving":{"batchSize":16}}}')  # fmt: skip
        wait_until(
            lambda: (
                kubectl.json("get", "emb", "m", "-n", ns)["status"]["aicore"]["configurationId"]
                != config_1
            ),
            what="a new configuration",
            timeout=60,
        )
        obj = wait_for_condition(kubectl, ns, "m", "Ready", timeout=600)
        print(f"batchSize rollout -> Ready: {time.monotonic() - started:.0f}s")
        assert obj["status"]["aicore"]["deploymentId"] == deployment_id
        assert obj["status"]["endpoint"] == endpoint
        assert remote(aicore, f"deployments/{deployment_id}")["status"] == "RUNNING"
        (pod,) = wait_until(
            lambda: [
                p
                for p in predictor_pods(kubectl, deployment_id)
                if {e["name"]: e.get("value") for e in p["spec"]["containers"][0]["env"]}.get(
                    "BATCH_SIZE"
                )
                == "16"
            ],
            what="the rolled predictor pod",
            timeout=60,
        )
        assert len(gateway_embedding(aicore, endpoint)) == MINILM_DIMS

        # suspend: STOPPED, and the InferenceService is gone.
        kubectl("patch", "emb", "m", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":true}}')
        wait_until(
            lambda: kubectl.json("get", "emb", "m", "-n", ns)["status"].get("phase") == "Suspended",
            what="phase Suspended",
            timeout=180,
        )
        assert remote(aicore, f"deployments/{deployment_id}")["status"] == "STOPPED"
        assert not kubectl.exists("inferenceservice", deployment_id, "-n", EMULATOR_NAMESPACE)

        # delete: no deployment left.
        kubectl("delete", "emb", "m", "-n", ns, "--timeout=120s", timeout=130)
        assert owned(aicore, "deployments", obj) == []
    finally:
        operator.stop()


def deploy(aicore: LocalAICore, scenario: str, executable: str, artifact_key: str) -> str:
    artifact = api(aicore, "POST", "/v2/lm/artifacts", {
        "name": f"{executable}-model", "kind": "model", "url": SEED_URL, "scenarioId": scenario,
    })  # fmt: skip
    config = api(aicore, "POST", "/v2/lm/configurations", {
        "name": executable, "scenarioId": scenario, "executableId": executable,
        "parameterBindings": [{"key": "image", "value": DEFAULT_IMAGE}],
        "inputArtifactBindings": [{"key": artifact_key, "artifactId": artifact["id"]}],
    })  # fmt: skip
    return str(api(aicore, "POST", "/v2/lm/deployments", {"configurationId": config["id"]})["id"])


def test_a_nomic_style_user_template_is_accepted_by_kserve(
    kserve_aicore: LocalAICore, node_kubectl: Kubectl
) -> None:
    aicore, kubectl = kserve_aicore, node_kubectl
    # Its imagePullSecrets must name a registered docker registry secret, as on AI Core.
    api(aicore, "POST", "/v2/admin/dockerRegistrySecrets", {
        "name": "team-registry", "data": {".dockerconfigjson": json.dumps({"auths": {}})},
    })  # fmt: skip
    did = deploy(aicore, "nomic-embeddings", "nomic-embed-text", "nomicModel")
    try:
        # Past the webhooks and reconciled: KServe made the predictor Deployment from it.
        wait_until(
            lambda: kubectl.exists("deployment", f"{did}-predictor", "-n", EMULATOR_NAMESPACE),
            what="the predictor Deployment KServe makes",
            timeout=120,
        )
        live = isvc(kubectl, did)
        predictor = live["spec"]["predictor"]
        assert predictor["imagePullSecrets"] == [{"name": "team-registry"}]
        assert predictor["containers"][0]["command"] == ["infinity_emb"]
        # Whether the upstream image's command runs in our image is not the point here.
        assert "KServe refused" not in remote(aicore, f"deployments/{did}").get("statusMessage", "")
    finally:
        api(aicore, "PATCH", f"/v2/lm/deployments/{did}", {"targetStatus": "STOPPED"})
    wait_until(
        lambda: not kubectl.exists("inferenceservice", did, "-n", EMULATOR_NAMESPACE),
        what="the InferenceService removed on stop",
        timeout=120,
    )


def test_a_template_kserve_refuses_makes_a_dead_deployment(kserve_aicore: LocalAICore) -> None:
    did = deploy(kserve_aicore, "refused-by-kserve", "bad-autoscaler", "model")

    def dead() -> dict[str, Any] | None:
        found: dict[str, Any] = remote(kserve_aicore, f"deployments/{did}")
        return found if found["status"] == "DEAD" else None

    found = wait_until(dead, what="DEAD", timeout=60)
    assert "KServe refused the InferenceService" in found["statusMessage"]
    assert "[bogus] is not a supported autoscaler class type" in found["statusMessage"]
    assert launcher.pid_alive(kserve_aicore.pid)  # a refusal is the deployment's, not a crash
