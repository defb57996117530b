"""The local control plane behaves like a real cluster where the operator depends on it:
authentication and RBAC, garbage collection, namespace teardown, ServiceAccount tokens, CRDs with
schema validation (KServe's own), server-side dry run.

Also runs against an external cluster (EMB_TEST_KUBECONFIG); local-only tests skip there.
"""

from __future__ import annotations

import json

import pytest

from tests.fixtures.cluster import ClusterHandle, Kubectl, wait_until

pytestmark = pytest.mark.integration


def _configmap(name: str, namespace: str, **meta: object) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, **meta},
        "data": {"k": "v"},
    }


def test_api_server_is_ready_and_serves_core_apis(kubectl: Kubectl) -> None:
    assert kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    names = {ns["metadata"]["name"] for ns in kubectl.json("get", "namespaces")["items"]}
    assert {"default", "kube-system"} <= names


def test_local_server_is_the_upstream_build(cluster: ClusterHandle, kubectl: Kubectl) -> None:
    if cluster.local is None:
        pytest.skip("external cluster")
    version = json.loads(kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"].startswith("v1.36."), version


def test_admin_creates_a_namespace(kubectl: Kubectl, namespace: str) -> None:
    ns = kubectl.json("get", "namespace", namespace)
    assert ns["status"]["phase"] == "Active"
    whoami = kubectl.json("auth", "whoami")
    assert "system:masters" in whoami["status"]["userInfo"]["groups"]


def test_garbage_collector_deletes_dependents(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(_configmap("owner", namespace))
    owner_uid = kubectl.json("get", "configmap", "owner", "-n", namespace)["metadata"]["uid"]
    owner_ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}
    kubectl.apply(_configmap("dependent", namespace, ownerReferences=[owner_ref]))
    kubectl.apply(_configmap("bystander", namespace))

    kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=background")

    wait_until(
        lambda: not kubectl.exists("configmap", "dependent", "-n", namespace),
        what="the garbage collector to delete the dependent ConfigMap",
        timeout=60,
    )
    assert kubectl.exists("configmap", "bystander", "-n", namespace)


def test_foreground_deletion_waits_for_dependents(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(_configmap("owner", namespace))
    owner_uid = kubectl.json("get", "configmap", "owner", "-n", namespace)["metadata"]["uid"]
    owner_ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner_uid,
        "blockOwnerDeletion": True,
    }
    kubectl.apply(_configmap("dependent", namespace, ownerReferences=[owner_ref]))

    # --wait: kubectl returns only once the owner is gone, which needs the GC to remove the
    # foregroundDeletion finalizer after deleting the dependent.
    kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=foreground", "--wait")
    assert not kubectl.exists("configmap", "dependent", "-n", namespace)


def test_namespace_deletion_completes(kubectl: Kubectl) -> None:
    name = "t-ns-deletion"
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait")
    kubectl("create", "namespace", name)
    kubectl.apply(_configmap("content", name))
    kubectl("delete", "namespace", name, "--wait=false")

    wait_until(
        lambda: not kubectl.exists("namespace", name),
        what=f"namespace {name} to be finalized by the namespace controller",
        timeout=60,
    )


def test_tester_is_authenticated_but_not_authorized(
    kubectl: Kubectl, tester_kubectl: Kubectl
) -> None:
    whoami = tester_kubectl.json("auth", "whoami")
    assert whoami["status"]["userInfo"]["username"] == "tester"

    denied = tester_kubectl("auth", "can-i", "list", "secrets", "--all-namespaces", check=False)
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    allowed = kubectl("auth", "can-i", "list", "secrets", "--all-namespaces", check=False)
    assert (allowed.returncode, allowed.stdout.strip()) == (0, "yes")

    forbidden = tester_kubectl("get", "secrets", "-n", "default", check=False)
    assert forbidden.returncode != 0
    assert "forbidden" in forbidden.stderr.lower()


def test_service_account_token_request(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "serviceaccount", "robot", "-n", namespace)
    token = kubectl("create", "token", "robot", "-n", namespace, "--duration=10m").stdout.strip()
    assert token.count(".") == 2  # a JWT

    # the minted token authenticates as the service account (and, unbound, may do nothing)
    whoami = kubectl("auth", "whoami", "-o", "json", f"--token={token}")
    user = json.loads(whoami.stdout)["status"]["userInfo"]["username"]
    assert user == f"system:serviceaccount:{namespace}:robot"
    denied = kubectl("get", "configmaps", "-n", namespace, f"--token={token}", check=False)
    assert "forbidden" in denied.stderr.lower()


def _isvc(namespace: str, min_replicas: object) -> dict[str, object]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "minilm", "namespace": namespace},
        "spec": {
            "predictor": {
                "minReplicas": min_replicas,
                "containers": [
                    {
                        "name": "kserve-container",
                        "image": "localhost/infinity:test",
                        "args": ["v2", "--model-id", "/models/all-MiniLM-L6-v2"],
                        "ports": [{"containerPort": 7997, "protocol": "TCP"}],
                    }
                ],
            }
        },
    }


def test_kserve_inference_service_is_validated_by_its_crd(
    kubectl: Kubectl, kserve_crds: tuple[str, ...], namespace: str
) -> None:
    ok = kubectl(
        "create", "--dry-run=server", "-o", "json", "-f", "-",
        input=json.dumps(_isvc(namespace, 1)),
    )  # fmt: skip
    created = json.loads(ok.stdout)
    assert created["metadata"]["uid"]  # assigned by the server: the request really went through
    assert created["spec"]["predictor"]["minReplicas"] == 1
    assert not kubectl.exists("inferenceservice", "minilm", "-n", namespace)  # dry run only

    bad = kubectl(
        "create", "--dry-run=server", "-f", "-",
        input=json.dumps(_isvc(namespace, "many")), check=False,
    )  # fmt: skip
    assert bad.returncode != 0
    assert "spec.predictor.minReplicas" in bad.stderr
