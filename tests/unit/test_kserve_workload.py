"""assess() with what KServe made for the InferenceService: the predictor pods and Deployment.

KServe v0.20.0 reports a predictor that cannot start only as MinimumReplicasUnavailable, and keeps
Ready=True while the old pod serves during a rollout; the backend reads the pods and the
Deployment, and these tables pin what assess() concludes from them. Container-status shapes
follow the kubelet's (the real ones recorded on the node are in test_kserve_assess_real.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from embedding_operator.api.conditions import Reason
from embedding_operator.api.spec import EmbeddingModelSpec, parse_spec
from embedding_operator.plan.kserve import Workload, assess, pod_failure, rollout_pending


def spec() -> EmbeddingModelSpec:
    return parse_spec(
        {"backend": "kserve", "model": {"name": "m", "uri": "pvc://models/m"}},
    )


def isvc(ready: str, reason: str | None = None) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": "Ready", "status": ready}
    if reason:
        cond.update(reason=reason, message="Deployment does not have minimum availability.")
    return {
        "metadata": {"name": "m"},
        "status": {"url": "http://m.example.com", "conditions": [cond]},
    }


def pod(
    waiting: str | None,
    *,
    message: str | None = None,
    last: dict[str, Any] | None = None,
    restarts: int = 0,
    init: bool = False,
    deleting: bool = False,
    name: str = "m-predictor-abc",
) -> dict[str, Any]:
    state: dict[str, Any] = (
        {"waiting": {"reason": waiting, **({"message": message} if message else {})}}
        if waiting
        else {"running": {"startedAt": "2026-12-01T12:00:00Z"}}
    )
    container = {
        "name": "storage-initializer" if init else "kserve-container",
        "ready": False,
        "restartCount": restarts,
        "state": state,
        "lastState": {"terminated": last} if last else {},
    }
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T12:00:00Z"
    key = "initContainerStatuses" if init else "containerStatuses"
    return {"metadata": meta, "status": {"phase": "Pending", key: [container]}}


CRASH = {"exitCode": 2, "reason": "Error", "message": "run.sh: MODEL_DIR='/mnt/models/x' missing\n"}


@pytest.mark.parametrize(
    ("pods", "reason", "fragments"),
    [
        (
            [pod("CrashLoopBackOff", message="back-off 20s restarting", last=CRASH, restarts=2)],
            Reason.CRASH_LOOP_BACK_OFF,
            ["CrashLoopBackOff (restarted 2 times)", "exit code 2 (Error)", "MODEL_DIR="],
        ),
        (
            [pod("ImagePullBackOff", message='Back-off pulling image "x:1"')],
            Reason.IMAGE_PULL_BACK_OFF,
            ['Back-off pulling image "x:1"', "spec.serving.image"],
        ),
        (
            [pod("ErrImageNeverPull", message='Container image "x:1" is not present')],
            Reason.IMAGE_PULL_BACK_OFF,
            ["ErrImageNeverPull", "is not present"],
        ),
        (
            [pod("CreateContainerConfigError", message='secret "key" not found')],
            Reason.CREATE_CONTAINER_ERROR,
            ['secret "key" not found'],
        ),
        (
            [pod("CrashLoopBackOff", last=CRASH, restarts=1, init=True)],
            Reason.CRASH_LOOP_BACK_OFF,
            ["container storage-initializer is in CrashLoopBackOff"],
        ),
    ],
)
def test_a_predictor_pod_that_cannot_start_stalls_with_the_kubelets_reason(
    pods: list[dict[str, Any]], reason: Reason, fragments: list[str]
) -> None:
    found = assess(spec(), isvc("False", "MinimumReplicasUnavailable"), Workload(pods=pods))
    assert found.outcome.state == "stalled"
    assert found.outcome.reason == reason
    for fragment in fragments:
        assert fragment in found.outcome.message, found.outcome.message
    assert "predictor pod m-predictor-abc of InferenceService m" in found.outcome.message


@pytest.mark.parametrize(
    "pods",
    [
        [],
        [pod(None)],  # running, probes not passed yet
        [pod("ContainerCreating")],
        [pod("ErrImagePull", deleting=True)],  # an old pod on its way out
    ],
)
def test_a_pod_on_its_way_is_not_a_failure(pods: list[dict[str, Any]]) -> None:
    assert pod_failure("m", pods) is None
    found = assess(spec(), isvc("False", "MinimumReplicasUnavailable"), Workload(pods=pods))
    assert found.outcome.state == "progressing"
    assert found.outcome.reason == Reason.INFERENCE_SERVICE_NOT_READY


def test_an_empty_termination_message_is_left_out() -> None:
    last = {"exitCode": 137, "reason": "OOMKilled", "message": "  \n"}
    outcome = pod_failure("m", [pod("CrashLoopBackOff", last=last, restarts=3)])
    assert outcome is not None
    assert "last exit code 137 (OOMKilled); check" in outcome.message


def deployment(
    generation: int, observed: int, *, updated: int, total: int, available: int, replicas: int = 1
) -> dict[str, Any]:
    return {
        "metadata": {"name": "m-predictor", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "replicas": total,
            "availableReplicas": available,
        },
    }


@pytest.mark.parametrize(
    ("dep", "pending"),
    [
        (deployment(2, 1, updated=0, total=1, available=1), "not picked up generation 2"),
        (deployment(2, 2, updated=0, total=1, available=1), "0 of 1 new replicas updated"),
        (deployment(2, 2, updated=1, total=2, available=1), "1 old replicas pending termination"),
        (deployment(2, 2, updated=1, total=1, available=0), "0 of 1 updated replicas available"),
        (deployment(2, 2, updated=1, total=1, available=1), None),
        (None, None),
    ],
)
def test_rollout_pending_is_kubectl_rollout_status(
    dep: dict[str, Any] | None, pending: str | None
) -> None:
    found = rollout_pending(dep)
    if pending is None:
        assert found is None
    else:
        assert found is not None and pending in found


def test_kserve_ready_during_a_rollout_is_rolling_out_not_ready() -> None:
    rolling = deployment(2, 2, updated=1, total=2, available=1)
    found = assess(spec(), isvc("True"), Workload(deployment=rolling, pods=[pod(None)]))
    assert found.outcome.state == "progressing"
    assert found.outcome.reason == Reason.ROLLING_OUT
    assert "old replicas pending termination" in found.outcome.message
    done = deployment(2, 2, updated=1, total=1, available=1)
    assert assess(spec(), isvc("True"), Workload(deployment=done)).outcome.state == "ready"


def test_a_new_pod_that_crash_loops_under_a_serving_old_one_is_stalled() -> None:
    rolling = deployment(2, 2, updated=1, total=2, available=1)
    pods = [pod(None, name="m-predictor-old"), pod("CrashLoopBackOff", last=CRASH, restarts=1)]
    found = assess(spec(), isvc("True"), Workload(deployment=rolling, pods=pods))
    assert found.outcome.state == "stalled"
    assert found.outcome.reason == Reason.CRASH_LOOP_BACK_OFF
