"""The operator image, run the way its Deployment runs it, reconciles with the install's RBAC.

The built image (scripts/build-images.sh, `operator_image` fixture) runs under podman as the pod
in manifests/install/ would run: the Deployment's user and group, read-only root filesystem, no
capabilities, no privilege escalation, and no kubeconfig — only a ServiceAccount token, CA and
namespace mounted as files at /var/run/secrets/kubernetes.io/serviceaccount plus
KUBERNETES_SERVICE_HOST/PORT, so both kopf and the operator's own client must use in-cluster
config. The ServiceAccount and its RBAC come from an overlay applied into the test namespace: the
namespaced one (Role, `run --namespace`) and the cluster-wide one (ClusterRoles, all namespaces).
With host networking the container reaches the local API server and the local AI Core on
loopback. One AI Core model (noop runtime: RUNNING without a predictor) and one KServe
model exercise every rule: watch and finalizer patches, status patches, Events, Secret get,
InferenceService get/create/patch, finalizer removal on delete.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from tests.fixtures.cluster import ClusterHandle, Kubectl, wait_until
from tests.fixtures.images import PODMAN_RUN_FLAGS, free_port
from tests.fixtures.manifests import (
    delete_cluster_scoped,
    denials,
    get_emb,
    one,
    render,
    short_prefix,
)
from tests.fixtures.operator import FAST_POLLING

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
SECRET = "aicore-service-key"


def model(name: str, backend: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "backend": backend,
        "model": {"name": "all-minilm-l6-v2", "dimensions": 384},
    }
    if backend == "aicore":
        spec["model"]["uri"] = "ai://default/models/all-minilm-l6-v2"
        spec["aicore"] = {"secretRef": {"name": SECRET}}
    else:
        spec["model"]["uri"] = "hf://sentence-transformers/all-MiniLM-L6-v2"
    return {
        "apiVersion": "embeddings.ai/v1alpha1",
        "kind": "EmbeddingModel",
        "metadata": {"name": name},
        "spec": spec,
    }


def api_server(kubeconfig: Path) -> tuple[str, int, bytes]:
    """Host, port and CA certificate (PEM) of the kubeconfig's current cluster."""
    config = yaml.safe_load(kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(
        c["cluster"] for c in config["clusters"] if c["name"] == context["context"]["cluster"]
    )
    url = urlsplit(cluster["server"])
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"])
    else:
        ca = Path(cluster["certificate-authority"]).read_bytes()
    assert url.hostname is not None
    return url.hostname, url.port or 443, ca


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@dataclass
class OperatorContainer:
    name: str
    liveness: str
    token: str

    def running(self) -> bool:
        proc = podman("inspect", "--format", "{{.State.Running}}", self.name)
        return proc.returncode == 0 and proc.stdout.strip() == "true"

    def logs(self) -> str:
        proc = podman("logs", self.name)
        return proc.stdout + proc.stderr

    def healthy(self) -> bool:
        if not self.running():
            pytest.fail(f"the operator container exited:\n{self.redacted_logs()[-3000:]}")
        try:
            return httpx.get(self.liveness, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def redacted_logs(self) -> str:
        return self.logs().replace(self.token, "<token>")

    def stop(self) -> str:
        """SIGTERM, as the kubelet stops a pod; podman's stderr (it says so if it had to kill)."""
        return podman("stop", "--ignore", "--time", "15", self.name, timeout=60).stderr


@pytest.fixture
def installed(
    request: pytest.FixtureRequest,
    kubectl: Kubectl,
    crd: str,
    kserve_crds: Any,
    namespace: str,
    tmp_path: Path,
) -> Iterator[dict[str, Any]]:
    """The overlay named by the test's parameter, installed into the test namespace (cluster-wide:
    with a name prefix, so its ClusterRoles are the test's own); yields its Deployment."""
    overlay: str = request.param
    prefix = short_prefix(namespace) if overlay == "cluster-wide" else ""
    docs = render(overlay, tmp_path, namespace=namespace, prefix=prefix)
    try:
        kubectl(
            "apply", "--server-side", "--force-conflicts", "--field-manager=test-e2e",
            "-f", "-", input=yaml.safe_dump_all(docs),
        )  # fmt: skip
        yield one(docs, "Deployment")
    finally:
        delete_cluster_scoped(kubectl, docs)


@pytest.fixture
def service_account_files(
    kubectl: Kubectl,
    cluster: ClusterHandle,
    installed: dict[str, Any],
    namespace: str,
    tmp_path: Path,
) -> tuple[Path, str]:
    """token, ca.crt and namespace as the kubelet mounts them; owned by the pod's user."""
    pod = installed["spec"]["template"]["spec"]
    sa = pod["serviceAccountName"]
    token = kubectl("create", "token", sa, "-n", namespace, "--duration=1h").stdout.strip()
    _, _, ca = api_server(cluster.kubeconfig)
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    (directory / "token").write_text(token)
    (directory / "ca.crt").write_bytes(ca)
    (directory / "namespace").write_text(namespace)
    uid, gid = pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    for path in (directory, *directory.iterdir()):
        path.chmod(0o700 if path.is_dir() else 0o400)
        os.chown(path, uid, gid)
    return directory, token


@pytest.fixture
def operator_container(
    operator_image: str,
    cluster: ClusterHandle,
    installed: dict[str, Any],
    service_account_files: tuple[Path, str],
    namespace: str,
) -> Iterator[OperatorContainer]:
    host, port, _ = api_server(cluster.kubeconfig)
    account_dir, token = service_account_files
    pod = installed["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    user = f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    health_port = free_port()
    name = f"emb-operator-e2e-{uuid.uuid4().hex[:8]}"
    flags = [*PODMAN_RUN_FLAGS, "--user", user, "--cap-drop", "all"]
    if security["readOnlyRootFilesystem"]:
        flags.append("--read-only")
    if security["allowPrivilegeEscalation"] is False:
        flags += ["--security-opt", "no-new-privileges"]
    env = {**FAST_POLLING, "KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": str(port)}
    for key, value in env.items():
        flags += ["--env", f"{key}={value}"]
    # The Deployment's args, with the downward-API namespace filled in as the kubelet would, and
    # the liveness and metrics endpoints on free ports (host networking shares the host's ports).
    args = [
        a.replace("$(POD_NAMESPACE)", namespace)
        for a in container["args"]
        if not a.startswith(("--liveness=", "--metrics-port="))
    ]
    args += [
        f"--liveness=http://127.0.0.1:{health_port}/healthz",
        f"--metrics-port={free_port()}",
    ]
    started = podman(
        "run", "--rm", "-d", "--name", name, *flags,
        "-v", f"{account_dir}:{SA_MOUNT}:ro",
        operator_image, *args,
    )  # fmt: skip
    assert started.returncode == 0, f"podman run failed:\n{started.stderr}"
    op = OperatorContainer(name, f"http://127.0.0.1:{health_port}/healthz", token)
    try:
        wait_until(op.healthy, what="the operator container's liveness endpoint", timeout=90)
        yield op
    finally:
        op.stop()
        podman("rm", "--force", "--ignore", name)


@pytest.mark.parametrize("installed", ["namespaced", "cluster-wide"], indirect=True)
def test_operator_image_reconciles_with_the_installs_rbac(
    kubectl: Kubectl,
    namespace: str,
    aicore: Any,
    aicore_faults: Any,
    operator_container: OperatorContainer,
) -> None:
    op = operator_container
    # In-cluster config only: nothing in the container points at a kubeconfig.
    inspected = json.loads(podman("inspect", op.name).stdout)[0]
    env_names = {e.split("=", 1)[0] for e in inspected["Config"]["Env"]}
    assert "KUBECONFIG" not in env_names
    assert inspected["Config"]["User"] != "" and not inspected["Config"]["User"].startswith("0")

    aicore_faults.set_runtime("noop")  # RUNNING without starting a predictor
    kubectl(
        "create", "secret", "generic", SECRET, "-n", namespace,
        f"--from-file=serviceKey={aicore.service_key_path}",
    )  # fmt: skip
    docs = [model("on-aicore", "aicore"), model("on-kserve", "kserve")]
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))

    # AI Core: the Secret was read (get by name) and the deployment runs; status was patched.
    def aicore_running() -> dict[str, Any] | None:
        obj = get_emb(kubectl, namespace, "on-aicore")
        running = obj.get("status", {}).get("aicore", {}).get("deploymentStatus") == "RUNNING"
        return obj if running else None

    obj = wait_until(aicore_running, what="AI Core deployment RUNNING", timeout=180)
    assert "embeddings.ai/finalizer" in obj["metadata"]["finalizers"]
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]

    # KServe: the InferenceService was created (server-side apply), owned by the model.
    owner = get_emb(kubectl, namespace, "on-kserve")
    isvc = wait_until(
        lambda: (
            kubectl.exists("isvc", "on-kserve", "-n", namespace)
            and kubectl.json("get", "isvc", "on-kserve", "-n", namespace)
        ),
        what="the InferenceService",
        timeout=60,
    )
    (ref,) = isvc["metadata"]["ownerReferences"]
    assert (ref["uid"], ref["controller"]) == (owner["metadata"]["uid"], True)
    wait_until(
        lambda: get_emb(kubectl, namespace, "on-kserve").get("status", {}).get("conditions"),
        what="status conditions on the KServe model",
        timeout=60,
    )

    # Events were posted (create on core v1 events).
    reasons = {e["reason"] for e in kubectl.json("get", "events", "-n", namespace)["items"]}
    assert {"DeploymentCreated", "InferenceServiceCreated"} <= reasons, reasons

    # Delete: the finalizer runs (AI Core cleanup) and is removed by the operator (patch).
    kubectl(
        "delete", "emb", "on-aicore", "on-kserve", "-n", namespace, "--timeout=90s", timeout=100
    )
    assert not kubectl.exists("emb", "on-aicore", "-n", namespace)

    logs = op.logs()
    assert op.token not in logs
    assert aicore.service_key["clientsecret"] not in logs
    # NB: a cluster-wide operator also sees other tests' namespaces; the API server's 403 for an
    # Event into a terminating namespace is admission (NamespaceTerminating), not RBAC.
    denied = denials(logs)
    assert denied == [], "RBAC denials in the operator log:\n" + "\n".join(denied[:10])
    assert "Activity 'authenticate' succeeded" in logs  # our in-cluster login, not kopf's

    # SIGTERM stops it well within the pod's grace period (no SIGKILL needed).
    stderr = op.stop()
    assert "SIGKILL" not in stderr, stderr
