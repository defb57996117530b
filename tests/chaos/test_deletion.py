"""Issue 15 item 3: deletion always finishes with nothing left running on AI Core.

- The operator is SIGKILLed, the namespace is deleted, the operator restarts: the service-key
  Secret was kept (Terminating) by its in-use finalizer, so the models' finalizers can still stop
  their deployments, and then the Secret and the namespace go.
- A model whose key never worked (nothing was created) loses its finalizer at once.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.chaos.helpers import all_remote, apply_models, wait_all_running
from tests.fixtures.aicore_operator import SECRET, model
from tests.fixtures.cluster import wait_until

pytestmark = pytest.mark.integration

IN_USE = "embeddings.ai/secret-in-use"
MODELS = 3


def secret_finalizers(kubectl, namespace: str) -> list[str]:
    obj = kubectl.json("get", "secret", SECRET, "-n", namespace)
    return list(obj["metadata"].get("finalizers") or [])


def test_namespace_deleted_while_the_operator_is_down_finishes_after_restart(
    kubectl, namespace, aicore, aicore_faults, aicore_key, start_operator, figures, request
):
    aicore_faults.set_runtime("noop")
    # NB: the Lease lives in the operator's own namespace, never in the one being deleted.
    home = f"{namespace[:50]}-op"
    kubectl("create", "namespace", home)
    request.addfinalizer(lambda: kubectl("delete", "namespace", home, "--wait=false", check=False))
    operator = start_operator(
        namespace, args=["--metrics-port=0", f"--leader-election-namespace={home}"]
    )
    names = [f"d{i}" for i in range(MODELS)]
    apply_models(kubectl, namespace, names)
    wait_all_running(kubectl, namespace, MODELS, timeout=180)
    prefixes = tuple(
        f"{o['metadata']['name']}-{o['metadata']['uid'][:8]}-"
        for o in kubectl.json("get", "emb", "-n", namespace)["items"]
    )
    assert secret_finalizers(kubectl, namespace) == [IN_USE]

    operator.kill()
    kubectl("delete", "namespace", namespace, "--wait=false")
    # While the operator is down the namespace waits on the models; the namespace controller
    # deletes the Secret, which stays readable (Terminating) thanks to its in-use finalizer.
    secret = wait_until(
        lambda: (
            (s := kubectl.json("get", "secret", SECRET, "-n", namespace))["metadata"].get(
                "deletionTimestamp"
            )
            and s
        ),
        what="the Secret Terminating",
        timeout=90,
    )
    assert secret["data"]["serviceKey"]

    restarted = time.monotonic()
    operator.start()
    wait_until(
        lambda: not kubectl.exists("namespace", namespace),
        what="the namespace to be gone",
        timeout=120,
    )
    figures["models"] = MODELS
    figures["kills"] = 1
    figures["seconds_to_finish_after_restart"] = round(time.monotonic() - restarted, 1)
    left = [
        d
        for d in all_remote(aicore, "deployments")
        if d.get("configurationName", "").startswith(prefixes)
    ]
    figures["orphans"] = len(left)
    assert left == [], json.dumps(left, indent=1)[:2000]


def test_a_model_whose_key_never_worked_is_deleted_at_once(
    kubectl, namespace, aicore, start_operator, tmp_path, figures
):
    wrong = {**aicore.service_key, "clientsecret": "not-the-secret"}
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(wrong))
    kubectl(
        "create", "secret", "generic", SECRET, "-n", namespace, f"--from-file=serviceKey={path}"
    )
    start_operator(namespace)
    kubectl.apply(model("never"), "-n", namespace)
    wait_until(
        lambda: any(
            c["type"] == "Stalled" and c["status"] == "True"
            for c in (kubectl.json("get", "emb", "never", "-n", namespace).get("status") or {}).get(
                "conditions", []
            )
        ),
        what="Stalled (AuthenticationFailed)",
        timeout=60,
    )
    started = time.monotonic()
    kubectl("delete", "emb", "never", "-n", namespace, "--timeout=30s")
    figures["seconds_to_delete"] = round(time.monotonic() - started, 1)
    assert not kubectl.exists("emb", "never", "-n", namespace)
    # The Secret is free again: nothing uses it.
    wait_until(
        lambda: secret_finalizers(kubectl, namespace) == [], what="Secret released", timeout=30
    )


def test_switching_the_secret_moves_the_protection(
    kubectl, namespace, aicore, aicore_faults, aicore_key, start_operator
):
    aicore_faults.set_runtime("noop")
    kubectl(
        "create", "secret", "generic", "other-key", "-n", namespace,
        f"--from-file=serviceKey={aicore.service_key_path}",
    )  # fmt: skip
    start_operator(namespace)
    kubectl.apply(model("sw"), "-n", namespace)
    wait_until(lambda: secret_finalizers(kubectl, namespace) == [IN_USE], what="A protected")
    kubectl(
        "patch", "emb", "sw", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"aicore":{"secretRef":{"name":"other-key"}}}}',
    )  # fmt: skip
    wait_until(
        lambda: (
            kubectl.json("get", "secret", "other-key", "-n", namespace)["metadata"].get(
                "finalizers"
            )
            == [IN_USE]
        ),
        what="B protected",
        timeout=60,
    )
    wait_until(lambda: secret_finalizers(kubectl, namespace) == [], what="A released", timeout=60)


def stalled_condition(kubectl, namespace: str, name: str) -> dict | None:
    obj = kubectl.json("get", "emb", name, "-n", namespace)
    for c in (obj.get("status") or {}).get("conditions", []):
        if c["type"] == "Stalled" and c["status"] == "True":
            return c
    return None


def test_a_deletion_aicore_does_not_answer_is_stalled_then_finishes_by_itself(
    kubectl, namespace, aicore, aicore_faults, aicore_key, start_operator, figures
):
    """AI Core unreachable (every connection dropped) while a model with recorded remote IDs is
    deleted: Stalled after the deletion deadline, naming the deployment and the fix; the
    finalizer stays; once AI Core answers again the deletion finishes with nothing left."""
    aicore_faults.set_runtime("noop")
    deadline = 8
    start_operator(namespace, EMB_DELETION_DEADLINE_SECONDS=str(deadline))
    apply_models(kubectl, namespace, ["gone"])
    wait_all_running(kubectl, namespace, 1, timeout=120)
    obj = kubectl.json("get", "emb", "gone", "-n", namespace)
    deployment = obj["status"]["aicore"]["deploymentId"]
    prefix = f"gone-{obj['metadata']['uid'][:8]}-"

    aicore_faults.set_faults(drop_connection={"rate": 1.0})
    deleted = time.monotonic()
    kubectl("delete", "emb", "gone", "-n", namespace, "--wait=false")
    stalled = wait_until(
        lambda: stalled_condition(kubectl, namespace, "gone"),
        what="Stalled while AI Core does not answer",
        timeout=deadline + 90,
    )
    figures["seconds_to_stalled"] = round(time.monotonic() - deleted, 1)
    figures["deadline_seconds"] = deadline
    assert stalled["reason"] == "DeletionBlocked", stalled
    assert f"deployment {deployment}" in stalled["message"], stalled["message"]
    assert "kubectl patch emb gone" in stalled["message"]
    assert time.monotonic() - deleted >= deadline
    # Nothing orphaned: the object and its finalizer stay while AI Core is away.
    time.sleep(5)
    held = kubectl.json("get", "emb", "gone", "-n", namespace)
    assert held["metadata"]["finalizers"], held["metadata"]

    aicore_faults.clear_faults()
    back = time.monotonic()
    wait_until(
        lambda: not kubectl.exists("emb", "gone", "-n", namespace),
        what="the deletion to finish once AI Core answers",
        timeout=120,
    )
    figures["seconds_to_finish_after_aicore_back"] = round(time.monotonic() - back, 1)
    left = [
        d
        for d in all_remote(aicore, "deployments")
        if d.get("configurationName", "").startswith(prefix)
    ]
    figures["models"] = 1
    figures["orphans"] = len(left)
    assert left == [], left
