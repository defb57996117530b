"""The node mode of the local cluster: pods really run (containerd + kubelet + kube-scheduler).

One node cluster per session (`node_cluster`); its teardown is checked for leftovers (mounts,
cgroups, bridge, shims) when the session ends.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from testcluster import Cluster, ClusterError
from testcluster import node as node_mod
from tests.fixtures.cluster import Kubectl, wait_until

pytestmark = pytest.mark.integration


def _deployment(name: str, image: str, args: list[str]) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "probe",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "args": args,
                            "resources": {"limits": {"memory": "32Mi", "cpu": "100m"}},
                            "securityContext": {
                                "runAsNonRoot": True,
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def _pod(kubectl: Kubectl, namespace: str, app: str) -> dict[str, Any] | None:
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", f"app={app}")["items"]
    return pods[0] if pods else None


def test_node_registers_ready_with_the_bridge_address(node_kubectl: Kubectl) -> None:
    node = node_kubectl.json("get", "node", node_mod.NODE_NAME)
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert ready["Ready"] == "True"
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == node_mod.NODE_IP
    assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.36.")
    runtime = node["status"]["nodeInfo"]["containerRuntimeVersion"]
    assert runtime.startswith(f"containerd://{node_mod.CONTAINERD_VERSION.lstrip('v')}")
    assert not node["spec"].get("taints"), "the node keeps a taint: pods would not schedule"


def test_a_deployment_runs_a_pod_the_host_reaches(
    node_kubectl: Kubectl, node_namespace: str, probe_image: str
) -> None:
    node_kubectl.apply(_deployment("probe", probe_image, ["serve"]), "-n", node_namespace)

    def running() -> dict[str, Any] | None:
        pod = _pod(node_kubectl, node_namespace, "probe")
        ready = pod and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in pod["status"].get("conditions") or []
        )
        return pod if ready and pod["status"].get("podIP") else None

    pod = wait_until(running, what="the probe pod to run", timeout=120)
    ip = pod["status"]["podIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(node_mod.POD_SUBNET)
    answer = httpx.get(f"http://{ip}:8080/", timeout=10)
    assert answer.text == f"probe {pod['metadata']['name']}\n"
    logs = node_kubectl("logs", "-n", node_namespace, pod["metadata"]["name"]).stdout
    assert "probe ready" in logs
    # Limits are enforced by the kubelet through the pod's cgroup.
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"memory": "32Mi", "cpu": "100m"}


def test_a_crashing_container_reports_its_last_message(
    node_kubectl: Kubectl, node_namespace: str, probe_image: str
) -> None:
    message = "model directory /mnt/models is empty"
    node_kubectl.apply(_deployment("crash", probe_image, ["fail", message]), "-n", node_namespace)

    def crash_looping() -> dict[str, Any] | None:
        pod = _pod(node_kubectl, node_namespace, "crash")
        statuses = (pod or {}).get("status", {}).get("containerStatuses") or []
        if not statuses:
            return None
        waiting = statuses[0].get("state", {}).get("waiting") or {}
        last = statuses[0].get("lastState", {}).get("terminated") or {}
        return statuses[0] if waiting.get("reason") == "CrashLoopBackOff" and last else None

    status = wait_until(crash_looping, what="CrashLoopBackOff", timeout=120)
    last = status["lastState"]["terminated"]
    assert last["exitCode"] == 3
    assert last["message"] == message, json.dumps(status)


def test_a_second_node_is_refused_while_one_runs(
    node_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One node per machine: a second start (another state dir) fails at once without a wait,
    naming the running one and how to queue instead, and leaves the running node untouched."""
    monkeypatch.setenv(node_mod.WAIT_ENV, "0")
    second = node_mod.Node(tmp_path / "second", tmp_path / "logs")
    with pytest.raises(ClusterError, match=node_mod.WAIT_ENV) as refused:
        second._claim()
    assert "another node cluster" in str(refused.value)
    assert all(node_cluster.node.alive().values()), node_cluster.node.alive()


def test_the_image_store_is_kept_outside_the_session(node_cluster: Cluster) -> None:
    """containerd's root is the kept cache store (images survive the session), and this
    session's start removed the clean mark, so a crash before stop() wipes it next time."""
    root = node_mod.containerd_root()
    config = (node_cluster.state_dir / "node" / "containerd" / "config.toml").read_text()
    assert f'root = "{root}"' in config
    assert node_mod.PAUSE_IMAGE in node_cluster.node.images()
    assert not (root / node_mod._CLEAN).exists()


def _fetch_pod(name: str, image: str, url: str, *, host_network: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "fetch",
                "image": image,
                "imagePullPolicy": "Never",
                "args": ["fetch", url],
                "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
            }
        ],
    }
    if host_network:
        # What an operator pod on the host network uses to resolve cluster names.
        spec.update(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def _web_service(kubectl: Kubectl, ns: str, image: str) -> str:
    """A Deployment of the probe behind Service `web`; its ClusterIP once the host reaches it."""
    kubectl.apply(_deployment("web", image, ["serve"]), "-n", ns)
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        "-n",
        ns,
    )
    cluster_ip = str(kubectl.json("get", "service", "web", "-n", ns)["spec"]["clusterIP"])

    def from_host() -> str | None:
        try:
            return httpx.get(f"http://{cluster_ip}/", timeout=3).text
        except httpx.HTTPError:
            return None  # endpoints not ready, or kube-proxy not synced yet

    answer = wait_until(from_host, what=f"the host to reach ClusterIP {cluster_ip}", timeout=120)
    assert answer.startswith("probe web-"), answer
    return cluster_ip


def _fetch(kubectl: Kubectl, ns: str, image: str, name: str, *, host_network: bool) -> None:
    url = f"http://web.{ns}.svc.{node_mod.Node.cluster_domain}/"
    kubectl.apply(_fetch_pod(name, image, url, host_network=host_network), "-n", ns)

    def finished() -> dict[str, Any] | None:
        pod = kubectl.json("get", "pod", name, "-n", ns)
        return pod if pod["status"].get("phase") in ("Succeeded", "Failed") else None

    pod = wait_until(finished, what=f"pod {name} to finish", timeout=120)
    logs = kubectl("logs", "-n", ns, name, check=False)
    assert pod["status"]["phase"] == "Succeeded", (name, logs.stdout, logs.stderr)
    assert logs.stdout.startswith("fetched 200 probe web-"), logs.stdout


def test_a_service_answers_on_its_cluster_ip_from_the_host_and_by_name_on_the_host_network(
    node_kubectl: Kubectl, node_namespace: str, probe_image: str
) -> None:
    """kube-proxy's rules serve the host; a hostNetwork pod with ClusterFirstWithHostNet (the
    operator's pod) resolves the Service's name through CoreDNS and reaches it."""
    _web_service(node_kubectl, node_namespace, probe_image)
    _fetch(node_kubectl, node_namespace, probe_image, "fetch-hostnet", host_network=True)


def test_a_pod_reaches_a_service_by_its_name(
    node_kubectl: Kubectl, node_namespace: str, probe_image: str
) -> None:
    """A pod on the pod network: CoreDNS for the name, its route to the service range through
    the bridge, kube-proxy's DNAT to the other pod (it had no route: "network unreachable")."""
    _web_service(node_kubectl, node_namespace, probe_image)
    _fetch(node_kubectl, node_namespace, probe_image, "fetch-pod", host_network=False)
