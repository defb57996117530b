"""The operator as real pods on the node, installed the way users install it: `manifests/install`
with kustomize (each overlay) and the Helm chart (install, upgrade, uninstall).

Each install is the shipped one plus the harness component tests/data/node-install (host
network to reach the loopback API server, cluster DNS where the node has it, the pinned image
with imagePullPolicy Never, no fixed listeners: its kustomization.yaml says why), added by a
kustomization of the test's own, or by Helm's post-renderer for the chart. The operator image is
imported into containerd under a tag pinned to this build (`node_operator_image`).

Each install runs its Deployment (two replicas, leader election on the Lease `embedding-operator`:
one pod leads, the other waits as a standby), and the example (manifests/examples/
kserve-minilm-cpu.yaml, model from `pvc://`) becomes Ready through the pod, with KServe's own
controller. One model serves the whole module (a predictor pod start costs 30-60 s on two
cores): the first install creates it; before each later install its status is removed, so only
the new operator pod can make it Ready again. Its Ready reason is ServingVerified where the node
has cluster DNS (`tests.fixtures.node.CLUSTER_DNS`), else the operator cannot resolve the
predictor's Service name and reports ServingCheckSkipped.

The tests run in order and build on each other: cluster-wide overlay, namespaced overlay, then
helm install → upgrade → uninstall.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from testcluster import Cluster
from testcluster import kserve as kserve_mod
from tests.fixtures import kserve_example as kx
from tests.fixtures.cluster import KUBECTL, REPO_ROOT, Kubectl, wait_until
from tests.fixtures.helm import CHART, RELEASE, Helm, values_args
from tests.fixtures.images import MINILM_DIMS
from tests.fixtures.manifests import INSTALL, denials, kustomize
from tests.fixtures.node import CLUSTER_DNS

pytestmark = [pytest.mark.slow, pytest.mark.integration]

HARNESS = REPO_ROOT / "tests" / "data" / "node-install"
POST_RENDER = HARNESS / "helm-post-render"
#: The model's namespace; the namespaced overlay is installed into it, as docs/install.md says.
MODELS = "emb-pods"
HELM_NAMESPACE = "emb-helm"
PV = "models-pods"
LEASE = "embedding-operator"
SELECTOR = "app.kubernetes.io/name=embedding-operator,app.kubernetes.io/component=controller"
CRD = "embeddingmodels.embeddings.ai"


class Platform:
    """What every test of the module shares: the cluster, the pinned image, the API server port."""

    def __init__(self, cluster: Cluster, kubectl: Kubectl, image: str, tmp: Path) -> None:
        self.kubectl = kubectl
        self.kubeconfig = str(cluster.kubeconfig)
        self.image = image
        self.api_port = urlsplit(cluster.server).port
        self.tmp = tmp
        self.timings: dict[str, float] = {}

    def kustomization(self, directory: Path, resources: list[str], **extra: Any) -> Path:
        """`directory`/kustomization.yaml: `resources` + the harness component + this run's API
        server port (+ `extra` fields)."""
        directory.mkdir(parents=True, exist_ok=True)
        port = [
            {
                "op": "add",
                "path": "/spec/template/spec/containers/0/env/-",
                "value": {"name": "KUBERNETES_SERVICE_PORT", "value": str(self.api_port)},
            }
        ]
        doc: dict[str, Any] = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
            "components": [os.path.relpath(HARNESS, directory)],
            "patches": [
                {
                    "target": {"kind": "Deployment", "labelSelector": SELECTOR.split(",")[1]},
                    "patch": json.dumps(port),
                }
            ],
            **extra,
        }
        (directory / "kustomization.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        return directory

    def overlay(self, overlay: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """The overlay as a user's kustomization installs it, plus the harness."""
        directory = self.tmp / f"install-{overlay}"
        repository, tag = self.image.rsplit(":", 1)
        extra: dict[str, Any] = {
            # The base's image is the released one; this pins the build imported into the node.
            "images": [
                {
                    "name": "ghcr.io/embedding-operator/embedding-operator",
                    "newName": repository,
                    "newTag": tag,
                }
            ]
        }
        if namespace:
            extra["namespace"] = namespace
        rel = os.path.relpath(INSTALL / "overlays" / overlay, directory)
        return kustomize(self.kustomization(directory, [rel], **extra))


@pytest.fixture(scope="module")
def platform(
    node_cluster: Cluster,
    node_kubectl: Kubectl,
    kserve_controller: kserve_mod.Controller,
    node_serving_image: str,
    node_operator_image: str,
    minilm_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    kubectl = node_kubectl
    kubectl("create", "namespace", MODELS)
    kx.model_volume(kubectl, MODELS, minilm_dir, PV)
    shared = Platform(node_cluster, kubectl, node_operator_image, tmp_path_factory.mktemp("pods"))
    try:
        yield shared
    finally:
        print("timings:", json.dumps({k: round(v) for k, v in shared.timings.items()}))
        # NB: no operator may be left to remove the finalizer.
        if kubectl.exists("emb", "minilm", "-n", MODELS):
            kubectl("patch", "emb", "minilm", "-n", MODELS, "--type=merge",
                    "-p", '{"metadata":{"finalizers":null}}', check=False)  # fmt: skip
        for ns in (MODELS, HELM_NAMESPACE, "embedding-operator"):
            kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
        kubectl("delete", "pv", PV, "--wait=false", "--ignore-not-found", check=False)
        for kind in ("clusterrole", "clusterrolebinding"):
            for name in ("embedding-operator", "embedding-operator-secret-reader"):
                kubectl("delete", kind, name, "--ignore-not-found", check=False)


# -- helpers -------------------------------------------------------------------------------------


def operator_pods(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", SELECTOR)["items"]
    return [p for p in pods if not kx.terminating(p)]


def pod_log(kubectl: Kubectl, namespace: str, pod: str) -> str:
    return kubectl("logs", pod, "-n", namespace, check=False).stdout


def running_with_one_leader(
    kubectl: Kubectl, namespace: str, image: str, exclude: Collection[str] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait for two Ready operator pods (none named in `exclude`) of the pinned image, one of
    them holding the Lease and the other logging that it waits: (leader, standby)."""

    def settled() -> tuple[dict[str, Any], dict[str, Any]] | None:
        pods = operator_pods(kubectl, namespace)
        if len(pods) != 2 or any(p["metadata"]["name"] in exclude for p in pods):
            return None
        if not all(kx.pod_ready(p) for p in pods):
            return None
        lease = kubectl("get", "lease", LEASE, "-n", namespace, "-o", "json", check=False)
        if lease.returncode != 0:
            return None
        holder = json.loads(lease.stdout)["spec"].get("holderIdentity")
        leaders = [p for p in pods if p["metadata"]["name"] == holder]
        standbys = [p for p in pods if p["metadata"]["name"] != holder]
        if len(leaders) != 1:
            return None
        # NB: a standby logs the holder it first saw (in a roll-out, maybe an old pod since gone).
        log = pod_log(kubectl, namespace, standbys[0]["metadata"]["name"])
        if "standby: Lease" not in log or "acquired Lease" in log:
            return None
        return leaders[0], standbys[0]

    leader, standby = wait_until(
        settled, what=f"two operator pods in {namespace}, one leading", timeout=300, interval=2
    )
    for pod in (leader, standby):
        spec = pod["spec"]
        assert spec["hostNetwork"] is True and spec["containers"][0]["image"] == image, spec
        assert spec["serviceAccountName"] == "embedding-operator"
        statuses = pod["status"]["containerStatuses"]
        assert statuses[0]["restartCount"] == 0, statuses
    log = pod_log(kubectl, namespace, leader["metadata"]["name"])
    assert f"acquired Lease {namespace}/{LEASE} as {leader['metadata']['name']}" in log, log[-2000:]
    return leader, standby


def assert_ready_via_pod(
    kubectl: Kubectl, namespace: str, pods: list[str], serving_reasons: tuple[str, ...]
) -> dict[str, Any]:
    """`kubectl wait` for Ready; the reason is one an operator pod may give here; the pods'
    logs carry no RBAC denial."""
    proc = kubectl(
        "wait", "-n", MODELS, "--for=condition=Ready", "--timeout=600s", "emb/minilm",
        check=False, timeout=620,
    )  # fmt: skip
    logs = {pod: pod_log(kubectl, namespace, pod) for pod in pods}
    assert proc.returncode == 0, proc.stderr + "\n".join(log[-2000:] for log in logs.values())
    obj = kx.emb(kubectl, MODELS, "minilm")
    ready = kx.condition(obj, "Ready")
    dns = "has" if CLUSTER_DNS else "has no"
    assert ready["reason"] in serving_reasons, (
        f"Ready through the operator pod with reason {ready['reason']} ({ready.get('message')}); "
        f"the node {dns} cluster DNS (tests.fixtures.node.CLUSTER_DNS), so one of "
        f"{serving_reasons} was expected; status.serving: {obj['status'].get('serving')}"
    )
    print(f"Ready via the operator pod in {namespace}: reason {ready['reason']}")
    for pod, log in logs.items():
        denied = denials(log)
        assert denied == [], f"RBAC denials in {pod}'s log:\n" + "\n".join(denied[:10])
    return obj


def forget_status(kubectl: Kubectl) -> None:
    """Remove the model's status, so that only the next operator can make it Ready again."""
    kubectl("patch", "emb", "minilm", "-n", MODELS, "--subresource=status", "--type=json",
            "-p", '[{"op": "remove", "path": "/status"}]')  # fmt: skip
    assert "status" not in kx.emb(kubectl, MODELS, "minilm")


def apply(kubectl: Kubectl, docs: list[dict[str, Any]]) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=install",
            "-f", "-", input=yaml.safe_dump_all(docs), timeout=120)  # fmt: skip


def uninstall(kubectl: Kubectl, docs: list[dict[str, Any]], namespace: str) -> None:
    """Delete the install but the CRD (deleting it would delete every EmbeddingModel)."""
    kept = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
    kubectl("delete", "--ignore-not-found", "--wait=true", "-f", "-",
            input=yaml.safe_dump_all(kept), timeout=180)  # fmt: skip
    wait_until(
        lambda: not operator_pods(kubectl, namespace), what="operator pods gone", timeout=120
    )


def predictor_serves(kubectl: Kubectl) -> None:
    (pod,) = kx.predictor_pods(kubectl, MODELS, "minilm")
    assert len(kx.embed(pod)) == MINILM_DIMS


# -- kustomize: each overlay ---------------------------------------------------------------------


def test_cluster_wide_overlay_runs_as_pods_and_the_example_becomes_ready(
    platform: Platform, serving_reasons: tuple[str, ...]
) -> None:
    kubectl = platform.kubectl
    docs = platform.overlay("cluster-wide")
    namespace = "embedding-operator"
    started = time.monotonic()
    apply(kubectl, docs)
    try:
        leader, standby = running_with_one_leader(kubectl, namespace, platform.image)
        platform.timings["cluster-wide install -> pods running, one leading"] = (
            time.monotonic() - started
        )
        started = time.monotonic()
        kubectl("apply", "--validate=false", "-f", "-", input=json.dumps(kx.example(MODELS)))
        pods = [leader["metadata"]["name"], standby["metadata"]["name"]]
        assert_ready_via_pod(kubectl, namespace, pods, serving_reasons)
        platform.timings["apply -> Ready via the pod"] = time.monotonic() - started
        print(f"apply -> Ready via the operator pod: {time.monotonic() - started:.0f}s")
        predictor_serves(kubectl)
        # The standby never acted: it still waits, and its log has no reconcile in it.
        standby_log = pod_log(kubectl, namespace, standby["metadata"]["name"])
        assert "minilm" not in standby_log, standby_log[-2000:]
    finally:
        uninstall(kubectl, docs, namespace)
    assert kubectl.exists("crd", CRD) and kubectl.exists("emb", "minilm", "-n", MODELS)


def test_namespaced_overlay_in_the_models_namespace_makes_it_ready(
    platform: Platform, serving_reasons: tuple[str, ...]
) -> None:
    kubectl = platform.kubectl
    forget_status(kubectl)
    docs = platform.overlay("namespaced", namespace=MODELS)
    assert {d["kind"] for d in docs} >= {"Role", "RoleBinding"}
    assert not {"ClusterRole", "ClusterRoleBinding"} & {d["kind"] for d in docs}
    apply(kubectl, docs)
    try:
        leader, standby = running_with_one_leader(kubectl, MODELS, platform.image)
        pods = [leader["metadata"]["name"], standby["metadata"]["name"]]
        assert_ready_via_pod(kubectl, MODELS, pods, serving_reasons)
    finally:
        uninstall(kubectl, docs, MODELS)


# -- Helm ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node_helm(
    helm_binary: Path, platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> Helm:
    return Helm(helm_binary, tmp_path_factory.mktemp("helm-home"), platform.kubeconfig)


def helm_args(platform: Platform, values: dict[str, Any]) -> list[str]:
    """The chart, the values (+ the pinned image), and the harness as a post-renderer: Helm's
    output through the same component the kustomize installs get."""
    repository, tag = platform.image.rsplit(":", 1)
    image = {"image": {"repository": repository, "tag": tag, "pullPolicy": "Never"}}
    renderer = platform.kustomization(platform.tmp / "helm-post-render", ["helm.yaml"])
    kubectl = shutil.which(KUBECTL) or KUBECTL
    return [
        str(CHART), "-n", HELM_NAMESPACE, *values_args({**values, **image}, platform.tmp),
        "--post-renderer", str(POST_RENDER),
        "--post-renderer-args", str(renderer), "--post-renderer-args", kubectl,
    ]  # fmt: skip


def test_helm_install_runs_the_operator_and_the_example_becomes_ready(
    platform: Platform, node_helm: Helm, serving_reasons: tuple[str, ...]
) -> None:
    kubectl = platform.kubectl
    forget_status(kubectl)
    kubectl("create", "namespace", HELM_NAMESPACE)
    started = time.monotonic()
    node_helm("install", RELEASE, *helm_args(platform, {}), timeout=180)
    leader, standby = running_with_one_leader(kubectl, HELM_NAMESPACE, platform.image)
    pods = [leader["metadata"]["name"], standby["metadata"]["name"]]
    assert_ready_via_pod(kubectl, HELM_NAMESPACE, pods, serving_reasons)
    platform.timings["helm install -> Ready"] = time.monotonic() - started
    print(f"helm install -> Ready: {time.monotonic() - started:.0f}s")
    deployment = kubectl.json("get", "deployment", RELEASE, "-n", HELM_NAMESPACE)
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_helm_upgrade_rolls_the_pods_and_the_model_stays_ready(
    platform: Platform, node_helm: Helm
) -> None:
    kubectl = platform.kubectl
    before = {p["metadata"]["name"] for p in operator_pods(kubectl, HELM_NAMESPACE)}
    resources = {"requests": {"cpu": "60m", "memory": "160Mi"}, "limits": {"memory": "300Mi"}}
    values = {"logFormat": "json", "resources": resources}
    node_helm("upgrade", RELEASE, *helm_args(platform, values), timeout=180)

    samples: list[str | None] = []

    def rolled() -> list[dict[str, Any]] | None:
        samples.append(kx.condition(kx.emb(kubectl, MODELS, "minilm"), "Ready").get("status"))
        pods = kubectl.json("get", "pods", "-n", HELM_NAMESPACE, "-l", SELECTOR)["items"]
        names = {p["metadata"]["name"] for p in pods}
        new = [p for p in pods if p["metadata"]["name"] not in before and kx.pod_ready(p)]
        return new if len(new) == 2 and not names & before else None

    wait_until(rolled, what="the upgrade's two new pods, the old ones gone", timeout=300)
    leader, _ = running_with_one_leader(kubectl, HELM_NAMESPACE, platform.image, exclude=before)
    container = leader["spec"]["containers"][0]
    # NB: Helm merges maps in values: the chart's default cpu limit stays beside the new ones.
    merged = {"requests": resources["requests"], "limits": {"cpu": "500m", "memory": "300Mi"}}
    assert container["resources"] == merged, container["resources"]
    assert "--log-format=json" in container["args"]
    # The new leader logs JSON and reconciles without a denial; the model was Ready throughout.
    log = pod_log(kubectl, HELM_NAMESPACE, leader["metadata"]["name"])
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert lines and any("acquired Lease" in str(line.get("message")) for line in lines), log[
        -2000:
    ]
    assert denials(log) == []
    assert samples and set(samples) == {"True"}, f"Ready during the roll: {samples}"
    obj = kx.wait_emb(kubectl, MODELS, "minilm", "Ready", timeout=60)
    assert kx.condition(obj, "Ready")["observedGeneration"] == obj["metadata"]["generation"]
    history = node_helm("history", RELEASE, "-n", HELM_NAMESPACE, "-o", "json").stdout
    assert [r["revision"] for r in json.loads(history)] == [1, 2]


def test_helm_uninstall_removes_the_operator_and_keeps_the_crd_and_the_model(
    platform: Platform, node_helm: Helm
) -> None:
    kubectl = platform.kubectl
    node_helm("uninstall", RELEASE, "-n", HELM_NAMESPACE, "--wait", timeout=180)
    wait_until(
        lambda: not operator_pods(kubectl, HELM_NAMESPACE), what="operator pods gone", timeout=120
    )
    assert not kubectl.exists("deployment", RELEASE, "-n", HELM_NAMESPACE)
    assert not kubectl.exists("clusterrole", RELEASE)
    assert not kubectl.exists("clusterrolebinding", f"{RELEASE}-secret-reader")
    # Helm keeps crds/ (docs/install.md): the model stays, Ready as last written, and its
    # InferenceService keeps serving; nothing reconciles it until an operator runs again.
    assert kubectl.exists("crd", CRD)
    obj = kx.emb(kubectl, MODELS, "minilm")
    assert kx.condition(obj, "Ready")["status"] == "True"
    assert "embeddings.ai/finalizer" in obj["metadata"]["finalizers"]
    assert kubectl.exists("inferenceservice", "minilm", "-n", MODELS)
    predictor_serves(kubectl)
