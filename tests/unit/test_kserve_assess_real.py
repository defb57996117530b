"""assess() on InferenceService statuses written by KServe v0.20.0's own controller.

The YAML files in tests/data/kserve/real/ are what the real controller reported during
tests/e2e/test_kserve_node.py on the local node (Standard mode): Ready, stopped, a predictor
whose container crash-loops because its model cannot load (with its pods, as the kubelet reported
them), and a rollout after a spec change (with the predictor Deployment at that moment). They pin
the shapes assess() reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from embedding_operator.api.conditions import Reason
from embedding_operator.api.spec import EmbeddingModelSpec, parse_spec
from embedding_operator.plan.kserve import Workload, assess

REAL = Path(__file__).resolve().parents[1] / "data" / "kserve" / "real"


def live(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((REAL / f"{name}.yaml").read_text())
    doc["metadata"] = {"name": "minilm"}
    return dict(doc)


def spec(**extra: Any) -> EmbeddingModelSpec:
    raw: dict[str, Any] = {
        "backend": "kserve",
        "model": {"name": "all-minilm-l6-v2", "uri": "pvc://models/all-minilm-l6-v2"},
    }
    raw.update(extra)
    return parse_spec(raw)


def test_ready_is_ready_and_checks_the_cluster_local_address() -> None:
    found = assess(spec(), live("inferenceservice-ready"))
    assert found.outcome.state == "ready"
    assert found.check_url is not None
    assert found.check_url.endswith(".svc.cluster.local/v1")


@pytest.mark.parametrize("suspend", [True, False])
def test_stopped(suspend: bool) -> None:
    found = assess(spec(suspend=suspend), live("inferenceservice-stopped"))
    if suspend:
        assert found.outcome.state == "suspended"
        assert found.outcome.reason == Reason.SUSPENDED
    else:
        assert found.outcome.state == "progressing"  # resuming


def test_crash_looping_predictor_is_only_not_ready_in_kserves_status() -> None:
    # NB: what KServe v0.20.0 really reports while the predictor container crash-loops (its
    # model directory is empty): the Deployment's MinimumReplicasUnavailable, model state
    # Pending, no lastFailureInfo. From this alone assess() can only say "not ready"; the pod's
    # own failure is not in the InferenceService (the next test reads the pods).
    obj = live("inferenceservice-crashloop")
    model = obj["status"]["modelStatus"]
    assert model["transitionStatus"] == "InProgress" and "lastFailureInfo" not in model
    found = assess(spec(), obj)
    assert found.outcome.state == "progressing", found.outcome
    assert found.outcome.reason == Reason.INFERENCE_SERVICE_NOT_READY
    assert "PredictorReady=False (MinimumReplicasUnavailable" in found.outcome.message


def recorded(name: str) -> Any:
    return yaml.safe_load((REAL / f"{name}.yaml").read_text())


def test_crash_looping_predictor_pod_is_stalled_with_its_last_message() -> None:
    # The pods the real kubelet reported at the same time (tests/e2e/test_kserve_node.py): the
    # container waits in CrashLoopBackOff, and its last termination carries run.sh's message.
    pods = recorded("pods-crashloop")
    found = assess(spec(), live("inferenceservice-crashloop"), Workload(pods=pods))
    assert found.outcome.state == "stalled", found.outcome
    assert found.outcome.reason == Reason.CRASH_LOOP_BACK_OFF
    assert "container kserve-container is in CrashLoopBackOff" in found.outcome.message
    assert "last exit code 2 (Error)" in found.outcome.message
    assert "MODEL_DIR=" in found.outcome.message


def test_kserve_ready_while_the_deployment_rolls_is_rolling_out() -> None:
    # Recorded mid-rollout after a spec change: KServe still says Ready (the old pod serves),
    # the Deployment has not finished; the operator must not call the new generation Ready.
    isvc = live("inferenceservice-rolling")
    ready = {c["type"]: c["status"] for c in isvc["status"]["conditions"]}
    assert ready["Ready"] == "True", isvc["status"]
    deployment = recorded("deployment-rolling")
    found = assess(spec(), isvc, Workload(deployment=deployment))
    assert found.outcome.state == "progressing", found.outcome
    assert found.outcome.reason == Reason.ROLLING_OUT
    assert assess(spec(), isvc).outcome.state == "ready"  # KServe's word alone: the gap
