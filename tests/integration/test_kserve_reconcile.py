"""KServeBackend against the real local API server, with the test standing in for KServe.

No KServe controller runs here: each test writes the InferenceService status exactly as KServe's
controller would (through the status subresource), then calls `KServeBackend.reconcile` with a
context built from a real EmbeddingModel object and checks what the backend concluded and wrote.
Garbage collection is real (kube-controller-manager's collector runs in the local control plane).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from embedding_operator.api.conditions import Reason
from embedding_operator.api.spec import parse_spec
from embedding_operator.api.status import EmbeddingModelStatus
from embedding_operator.backends.base import ObjectRef, ReconcileContext, Reconciled
from embedding_operator.backends.kserve import KServeBackend
from embedding_operator.kube import make_client
from embedding_operator.plan.kserve import (
    DEPLOYMENT_MODE_ANNOTATION,
    EVENT_CREATED,
    EVENT_UPDATED,
    STOP_ANNOTATION,
)
from embedding_operator.settings import Settings
from tests.fixtures.cluster import Kubectl, kserve_crd_files, wait_until
from tests.fixtures.infinity import FakeInfinity
from tests.fixtures.kserve_status import MINILM, READY, cond, create_model, get_isvc, kserve_reports
from tests.fixtures.manifests import ISVC

pytestmark = pytest.mark.integration


@pytest.fixture
async def backend(kubeconfig: str) -> AsyncIterator[KServeBackend]:
    client = make_client(kubeconfig)
    try:
        yield KServeBackend(client, Settings())
    finally:
        await client.close()


def context(model: dict[str, Any], status: EmbeddingModelStatus | None = None) -> ReconcileContext:
    meta = model["metadata"]
    return ReconcileContext(
        ref=ObjectRef(meta["name"], meta["namespace"], meta["uid"], int(meta["generation"])),
        spec=parse_spec(model["spec"]),
        status=status or EmbeddingModelStatus(),
        annotations=dict(meta.get("annotations") or {}),
        now=datetime.now(UTC),
        logger=logging.getLogger("test.kserve"),
    )


def explain(result: Reconciled) -> str:
    return f"{result.outcome} endpoint={result.endpoint} serving={result.serving}"


async def test_create_then_follow_kserve_to_ready_with_a_verified_endpoint(
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: object,
    crd: str,
    backend: KServeBackend,
    fake_infinity: FakeInfinity,
) -> None:
    model = create_model(kubectl, namespace, "minilm", {})
    result = await backend.reconcile(context(model))
    assert result.outcome.state == "progressing", explain(result)
    assert result.outcome.reason == Reason.INFERENCE_SERVICE_NOT_READY
    assert [e.reason for e in result.events] == [EVENT_CREATED]
    assert result.requeue_after == backend.settings.intervals.pending

    isvc = get_isvc(kubectl, namespace, "minilm")
    meta = isvc["metadata"]
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "embeddings.ai/v1alpha1",
            "kind": "EmbeddingModel",
            "name": "minilm",
            "uid": model["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert meta["labels"] == {
        "app.kubernetes.io/managed-by": "embedding-operator",
        "app.kubernetes.io/name": "minilm",
        "embeddings.ai/model": "minilm",
    }
    assert meta["annotations"][DEPLOYMENT_MODE_ANNOTATION] == "Standard"
    assert meta["annotations"][STOP_ANNOTATION] == "false"
    managers = {f["manager"] for f in meta["managedFields"]}
    assert "embedding-operator" in managers

    # KServe starts rolling out the predictor.
    kserve_reports(
        kubectl, namespace, "minilm",
        conditions=[
            cond("IngressReady", "False"),
            cond("PredictorReady", "Unknown", "ReplicaSetUpdated", "ReplicaSet is progressing"),
            cond("Ready", "False"),
        ],
    )  # fmt: skip
    result = await backend.reconcile(context(model))
    assert result.outcome.reason == Reason.INFERENCE_SERVICE_NOT_READY, explain(result)
    assert "PredictorReady=Unknown (ReplicaSetUpdated" in result.outcome.message
    assert result.events == []

    # Ready, with a URL the operator can reach: the serving check runs for real.
    kserve_reports(kubectl, namespace, "minilm", conditions=READY, url=fake_infinity.url)
    result = await backend.reconcile(context(model))
    assert (result.outcome.state, result.outcome.reason) == ("ready", Reason.SERVING_VERIFIED), (
        explain(result)
    )
    assert result.endpoint == fake_infinity.url + "/v1"
    assert result.kserve is not None and result.kserve.url == fake_infinity.url
    assert result.serving is not None
    assert (result.serving.verified, result.serving.dimensions) == (True, 384)
    assert fake_infinity.requests[-1]["model"] == "all-minilm-l6-v2"
    assert result.requeue_after == backend.settings.intervals.ready

    # The same model now claims 768 dimensions: the check catches the mismatch.
    model = create_model(kubectl, namespace, "minilm", {"model": {**MINILM, "dimensions": 768}})
    result = await backend.reconcile(context(model))
    assert (result.outcome.state, result.outcome.reason) == (
        "stalled",
        Reason.DIMENSION_MISMATCH,
    ), explain(result)
    assert "384-dimensional" in result.outcome.message


async def test_cluster_local_url_skips_the_check(
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: object,
    crd: str,
    backend: KServeBackend,
) -> None:
    model = create_model(kubectl, namespace, "minilm", {})
    await backend.reconcile(context(model))
    local = f"http://minilm-predictor.{namespace}.svc.cluster.local"
    kserve_reports(
        kubectl, namespace, "minilm",
        conditions=READY, url=f"http://minilm-{namespace}.example.com", address={"url": local},
    )  # fmt: skip
    result = await backend.reconcile(context(model))
    assert (result.outcome.state, result.outcome.reason) == (
        "ready",
        Reason.SERVING_CHECK_SKIPPED,
    ), explain(result)
    assert result.endpoint == f"http://minilm-{namespace}.example.com/v1"
    assert result.serving is not None and result.serving.verified is None
    assert result.serving.message is not None and result.serving.message.startswith("skipped: ")
    assert local in result.serving.message


async def test_failed_model_load_is_stalled_with_kserves_reason(
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: object,
    crd: str,
    backend: KServeBackend,
) -> None:
    model = create_model(kubectl, namespace, "minilm", {})
    await backend.reconcile(context(model))
    kserve_reports(
        kubectl, namespace, "minilm",
        conditions=[cond("PredictorReady", "False"), cond("Ready", "False")],
        modelStatus={
            "transitionStatus": "BlockedByFailedLoad",
            "states": {"activeModelState": "Pending", "targetModelState": "FailedToLoad"},
            "lastFailureInfo": {
                "reason": "ModelLoadFailed",
                "message": "run.sh: STORAGE_URI='hf://x' is invalid",
                "exitCode": 2,
            },
        },
    )  # fmt: skip
    result = await backend.reconcile(context(model))
    assert (result.outcome.state, result.outcome.reason) == (
        "stalled",
        Reason.INFERENCE_SERVICE_FAILED,
    ), explain(result)
    assert "ModelLoadFailed" in result.outcome.message
    assert "STORAGE_URI='hf://x' is invalid" in result.outcome.message
    assert result.requeue_after == backend.settings.intervals.stalled


async def test_suspend_sets_the_stop_annotation_and_follows_stopped(
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: object,
    crd: str,
    backend: KServeBackend,
) -> None:
    model = create_model(kubectl, namespace, "minilm", {})
    await backend.reconcile(context(model))
    kserve_reports(kubectl, namespace, "minilm", conditions=READY, url="http://x.invalid")

    model = create_model(kubectl, namespace, "minilm", {"suspend": True})
    result = await backend.reconcile(context(model))
    assert (result.outcome.state, result.outcome.reason) == ("progressing", Reason.SUSPENDING)
    isvc = get_isvc(kubectl, namespace, "minilm")
    assert isvc["metadata"]["annotations"][STOP_ANNOTATION] == "true"

    # What KServe's predictor reconciler writes once it has deleted the predictor's objects.
    kserve_reports(
        kubectl, namespace, "minilm",
        conditions=[cond("PredictorReady", "False"), cond("Stopped", "True")], url=None,
    )  # fmt: skip
    result = await backend.reconcile(context(model))
    assert (result.outcome.state, result.outcome.reason) == ("suspended", Reason.SUSPENDED), (
        explain(result)
    )
    assert result.endpoint is None

    model = create_model(kubectl, namespace, "minilm", {"suspend": False})
    result = await backend.reconcile(context(model))
    assert result.outcome.state == "progressing" and "resuming" in result.outcome.message
    isvc = get_isvc(kubectl, namespace, "minilm")
    assert isvc["metadata"]["annotations"][STOP_ANNOTATION] == "false"


async def test_spec_change_updates_in_place_and_leaves_kserves_fields_alone(
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: object,
    crd: str,
    backend: KServeBackend,
) -> None:
    model = create_model(kubectl, namespace, "minilm", {})
    await backend.reconcile(context(model))
    before = get_isvc(kubectl, namespace, "minilm")

    # Fields other managers own: a KServe-style default in spec, and a legacy mode name written
    # by an older tool. Neither may be changed by our apply.
    kubectl(
        "patch", ISVC, "minilm", "-n", namespace, "--type=merge", "--field-manager=kserve",
        "-p", json.dumps({"spec": {"predictor": {"timeout": 60}}}),
    )  # fmt: skip
    kubectl(
        "annotate", ISVC, "minilm", "-n", namespace, "--overwrite", "--field-manager=legacy",
        f"{DEPLOYMENT_MODE_ANNOTATION}=RawDeployment",
    )  # fmt: skip
    kserve_reports(kubectl, namespace, "minilm", conditions=READY, url="http://x.invalid")

    model = create_model(kubectl, namespace, "minilm", {"serving": {"batchSize": 8}})
    assert model["metadata"]["generation"] == 2
    result = await backend.reconcile(context(model))
    assert [e.reason for e in result.events] == [EVENT_UPDATED]
    # KServe's Ready still describes the old spec: not reported as Ready yet.
    assert (result.outcome.state, result.outcome.reason) == ("progressing", Reason.UPDATING)

    after = get_isvc(kubectl, namespace, "minilm")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    env = {e["name"]: e["value"] for e in after["spec"]["predictor"]["containers"][0]["env"]}
    assert env["BATCH_SIZE"] == "8"
    assert after["spec"]["predictor"]["timeout"] == 60
    assert after["metadata"]["annotations"][DEPLOYMENT_MODE_ANNOTATION] == "RawDeployment"

    # Next pass with nothing changed: no write, no Event, KServe's Ready counts again.
    result = await backend.reconcile(context(model))
    assert result.events == []
    assert result.outcome.state == "ready", explain(result)
    assert (
        get_isvc(kubectl, namespace, "minilm")["metadata"]["generation"]
        == (after["metadata"]["generation"])
    )

    # Asking for another mode is refused (KServe's webhook would) and the live mode is kept.
    model = create_model(kubectl, namespace, "minilm", {"kserve": {"deploymentMode": "Knative"}})
    result = await backend.reconcile(context(model))
    assert (result.outcome.state, result.outcome.reason) == (
        "stalled",
        Reason.INFERENCE_SERVICE_REJECTED,
    ), explain(result)
    assert "spec.kserve.deploymentMode" in result.outcome.message
    live = get_isvc(kubectl, namespace, "minilm")
    assert live["metadata"]["annotations"][DEPLOYMENT_MODE_ANNOTATION] == "RawDeployment"


async def test_deleting_the_owner_deletes_the_inference_service(
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: object,
    crd: str,
    backend: KServeBackend,
) -> None:
    model = create_model(kubectl, namespace, "minilm", {})
    await backend.reconcile(context(model))
    finalized = await backend.finalize(context(model))
    assert finalized.done
    assert kubectl.exists(ISVC, "minilm", "-n", namespace)
    kubectl("delete", "embeddingmodel", "minilm", "-n", namespace)
    wait_until(
        lambda: not kubectl.exists(ISVC, "minilm", "-n", namespace),
        what="the garbage collector to delete the InferenceService",
        timeout=60,
    )


async def test_foreign_inference_service_of_our_name_is_left_alone(
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: object,
    crd: str,
    backend: KServeBackend,
) -> None:
    kubectl.apply(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "minilm", "namespace": namespace},
            "spec": {"predictor": {"containers": [{"name": "kserve-container", "image": "x"}]}},
        }
    )
    model = create_model(kubectl, namespace, "minilm", {})
    result = await backend.reconcile(context(model))
    assert (result.outcome.state, result.outcome.reason) == (
        "stalled",
        Reason.INFERENCE_SERVICE_CONFLICT,
    ), explain(result)
    isvc = get_isvc(kubectl, namespace, "minilm")
    assert "ownerReferences" not in isvc["metadata"]
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == "x"


async def poll(
    what: str, attempt: Callable[[], Awaitable[Reconciled]], done: Callable[[Reconciled], bool]
) -> Reconciled:
    """Call `attempt` until `done(result)`, failing after 60 s (CRD changes settle quickly)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        result = await attempt()
        if done(result):
            return result
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out waiting for {what}; last: {explain(result)}")
        await asyncio.sleep(0.5)


async def test_without_kserve_stalls_then_converges_once_installed(
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: object,
    crd: str,
    backend: KServeBackend,
) -> None:
    # NB: removes the cluster-wide InferenceService CRD (and every InferenceService with it) and
    # installs it again before returning, so later tests see KServe installed as before.
    kubectl("delete", "crd", ISVC, "--ignore-not-found", "--timeout=120s")
    try:
        model = create_model(kubectl, namespace, "minilm", {})
        result = await poll(
            "KServeNotInstalled",
            lambda: backend.reconcile(context(model)),
            lambda r: r.outcome.reason == Reason.KSERVE_NOT_INSTALLED,
        )
        assert result.outcome.state == "stalled"
        assert "install KServe" in result.outcome.message
        assert result.requeue_after == backend.settings.intervals.stalled
    finally:
        install_isvc_crd(kubectl)
    result = await poll(
        "the InferenceService once KServe is installed",
        lambda: backend.reconcile(context(model)),
        lambda r: r.outcome.reason != Reason.KSERVE_NOT_INSTALLED,
    )
    assert result.outcome.reason == Reason.INFERENCE_SERVICE_NOT_READY, explain(result)
    assert kubectl.exists(ISVC, "minilm", "-n", namespace)


def install_isvc_crd(kubectl: Kubectl) -> None:
    kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=tests",
        "-f", str(kserve_crd_files(("inferenceservices",))[0]),
    )  # fmt: skip

    def established() -> bool:
        crd = kubectl.json("get", "crd", ISVC)
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    # NB: `kubectl wait` errors out on a CRD whose status has no conditions yet; poll instead.
    wait_until(established, what=f"crd/{ISVC} to be Established", timeout=60)


async def test_api_server_rejection_is_stalled_with_its_message(
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: object,
    crd: str,
    backend: KServeBackend,
) -> None:
    # A policy engine (here a ValidatingAdmissionPolicy) refuses the InferenceService: the user
    # must see the API server's own message. Our CRD already rejects bad quantities up front.
    policy = f"deny-isvc-{namespace}"
    kubectl.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": policy},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["serving.kserve.io"],
                            "apiVersions": ["*"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["inferenceservices"],
                        }
                    ]
                },
                "validations": [
                    {"expression": "false", "message": "GPUs only in namespace ml-prod (policy)"}
                ],
            },
        }
    )
    kubectl.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy},
            "spec": {
                "policyName": policy,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
                },
            },
        }
    )
    probe = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "probe", "namespace": namespace},
        "spec": {"predictor": {"containers": [{"name": "kserve-container", "image": "x"}]}},
    }

    def enforced() -> bool:  # admission policies take a moment to be enforced
        proc = kubectl(
            "create", "--dry-run=server", "-f", "-", input=json.dumps(probe), check=False
        )
        return proc.returncode != 0 and "GPUs only in namespace ml-prod" in proc.stderr

    try:
        wait_until(enforced, what="the admission policy to be enforced")
        model = create_model(kubectl, namespace, "minilm", {})
        result = await backend.reconcile(context(model))
        assert result.outcome.reason == Reason.INFERENCE_SERVICE_REJECTED, explain(result)
        assert "GPUs only in namespace ml-prod" in result.outcome.message, result.outcome.message
        assert not kubectl.exists(ISVC, "minilm", "-n", namespace)
    finally:
        kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy,
                "--ignore-not-found", check=False)  # fmt: skip


async def test_hand_edits_to_our_fields_are_reverted(
    kubectl: Kubectl,
    namespace: str,
    kserve_crds: object,
    crd: str,
    backend: KServeBackend,
) -> None:
    model = create_model(kubectl, namespace, "minilm", {})
    await backend.reconcile(context(model))
    rendered = get_isvc(kubectl, namespace, "minilm")["spec"]["predictor"]["containers"]
    kubectl(
        "patch", ISVC, "minilm", "-n", namespace, "--type=json", "--field-manager=kubectl-edit",
        "-p", json.dumps([
            {"op": "replace", "path": "/spec/predictor/containers/0/image", "value": "evil:latest"},
            {"op": "replace", "path": "/spec/predictor/maxReplicas", "value": 9},
        ]),
    )  # fmt: skip
    result = await backend.reconcile(context(model))
    assert [e.reason for e in result.events] == [EVENT_UPDATED]
    predictor = get_isvc(kubectl, namespace, "minilm")["spec"]["predictor"]
    assert predictor["containers"] == rendered
    assert predictor["maxReplicas"] == 1


async def test_the_shell_writes_the_backends_view_into_the_embedding_model(
    kubectl: Kubectl,
    kubeconfig: str,
    namespace: str,
    kserve_crds: object,
    crd: str,
    fake_infinity: FakeInfinity,
) -> None:
    """Contract with reconciler.py: what the backend returns lands in status as documented."""
    from embedding_operator.reconciler import Reconciler

    events: list[tuple[str, str]] = []
    client = make_client(kubeconfig)
    try:
        shell = Reconciler(
            client,
            {"kserve": KServeBackend(client)},
            Settings(),
            lambda body, event: events.append((event.type, event.reason)),
        )
        create_model(kubectl, namespace, "minilm", {})
        log = logging.getLogger("test.kserve")

        def body() -> dict[str, Any]:
            got: dict[str, Any] = kubectl.json("get", "embeddingmodel", "minilm", "-n", namespace)
            return got

        await shell.reconcile(body(), log)
        kserve_reports(kubectl, namespace, "minilm", conditions=READY, url=fake_infinity.url)
        await shell.reconcile(body(), log)
    finally:
        await client.close()

    status = body()["status"]
    assert status["phase"] == "Ready", status
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "ServingVerified")
    assert status["endpoint"] == fake_infinity.url + "/v1"
    assert status["kserve"] == {"inferenceServiceName": "minilm", "url": fake_infinity.url}
    assert status["serving"]["verified"] is True and status["serving"]["dimensions"] == 384
    assert ("Normal", EVENT_CREATED) in events
    assert ("Normal", "ServingVerified") in events
