"""Reading KServe's status back: `assess`, ownership, and the serving-check verdicts (tables).

Live objects are built the way KServe's controller writes them (condition types and reasons from
pkg/apis/serving/v1beta1/inference_service_status.go and the predictor reconciler).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from embedding_operator.api.conditions import Reason
from embedding_operator.api.spec import EmbeddingModelSpec, parse_spec
from embedding_operator.api.status import EmbeddingModelStatus, Phase, ServingStatus
from embedding_operator.backends.base import ObjectRef
from embedding_operator.plan.kserve import assess, foreign_owner
from embedding_operator.plan.serving_check import (
    CheckResult,
    check_due,
    check_interval,
    judge_serving,
    reuse_serving,
)

REF = ObjectRef(name="minilm", namespace="ml", uid="uid-1", generation=3)
NOW = datetime(2026, 11, 24, 3, 0, 0, tzinfo=UTC)
URL = "http://minilm-ml.example.com"
ADDRESS = "http://minilm-predictor.ml.svc.cluster.local"


def spec(**extra: Any) -> EmbeddingModelSpec:
    raw: dict[str, Any] = {
        "backend": "kserve",
        "model": {"name": "all-minilm-l6-v2", "uri": "hf://sentence-transformers/all-MiniLM-L6-v2"},
    }
    raw.update(extra)
    return parse_spec(raw)


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    c = {"type": type_, "status": status}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def isvc(*conditions: dict[str, str], url: bool = False, **status: Any) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if conditions:
        body["conditions"] = list(conditions)
    if url:
        body["url"] = URL
        body["address"] = {"url": ADDRESS}
    body.update(status)
    return {"metadata": {"name": "minilm", "namespace": "ml"}, "status": body}


READY_ALL = (
    cond("IngressReady", "True"),
    cond("PredictorReady", "True"),
    cond("Ready", "True"),
    cond("Stopped", "False"),
)
FAILED_LOAD = {
    "transitionStatus": "BlockedByFailedLoad",
    "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
    "lastFailureInfo": {
        "reason": "ModelLoadFailed",
        "message": "run.sh: MODEL_DIR='/mnt/models' has no model files",
        "exitCode": 2,
    },
}

# (id, spec kwargs, live object, state, reason, fragments of the message)
ASSESS_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, Reason, list[str]]] = [
    (
        "no-status-yet",
        {},
        {"metadata": {"name": "minilm"}},
        "progressing",
        Reason.INFERENCE_SERVICE_NOT_READY,
        ["no status yet", "KServe's controller"],
    ),
    (
        "predictor-rolling-out",
        {},
        isvc(
            cond("PredictorReady", "Unknown", "ReplicaSetUpdated", "ReplicaSet has progressed"),
            cond("IngressReady", "False", "", ""),
            cond("Ready", "False", "", ""),
        ),
        "progressing",
        Reason.INFERENCE_SERVICE_NOT_READY,
        [
            "PredictorReady=Unknown (ReplicaSetUpdated: ReplicaSet has progressed)",
            "IngressReady=False",
        ],
    ),
    (
        "ready",
        {},
        isvc(*READY_ALL, url=True),
        "ready",
        Reason.SERVING_CHECK_SKIPPED,
        ["minilm is Ready"],
    ),
    (
        "model-failed-to-load",
        {},
        isvc(cond("PredictorReady", "False"), cond("Ready", "False"), modelStatus=FAILED_LOAD),
        "stalled",
        Reason.INFERENCE_SERVICE_FAILED,
        ["failed to load", "ModelLoadFailed", "has no model files", "exit code 2"],
    ),
    (
        # An update failed to load while the previous revision still serves: the spec is not
        # achieved, so Stalled wins over KServe's Ready.
        "ready-but-new-revision-failed",
        {},
        isvc(*READY_ALL, url=True, modelStatus=FAILED_LOAD),
        "stalled",
        Reason.INFERENCE_SERVICE_FAILED,
        ["failed to load"],
    ),
    (
        "invalid-predictor-spec",
        {},
        isvc(
            cond("Ready", "False"),
            modelStatus={
                "transitionStatus": "InvalidSpec",
                "lastFailureInfo": {"reason": "InvalidPredictorSpec", "message": "bad"},
            },
        ),
        "stalled",
        Reason.INFERENCE_SERVICE_REJECTED,
        ["KServe rejected", "InvalidPredictorSpec: bad"],
    ),
    (
        "progress-deadline-exceeded",
        {},
        isvc(
            cond(
                "PredictorReady",
                "False",
                "ProgressDeadlineExceeded",
                'ReplicaSet "minilm-predictor-5d" has timed out progressing.',
            ),
            cond("Ready", "False", "ProgressDeadlineExceeded", "timed out"),
        ),
        "stalled",
        Reason.INFERENCE_SERVICE_FAILED,
        ["ProgressDeadlineExceeded", "has timed out progressing"],
    ),
    (
        "pods-forbidden-by-admission",
        {},
        isvc(
            cond(
                "PredictorReady",
                "False",
                "FailedCreate",
                'pods "minilm-predictor-x" is forbidden: exceeded quota',
            ),
            cond("Ready", "False"),
        ),
        "stalled",
        Reason.INFERENCE_SERVICE_FAILED,
        ["FailedCreate", "exceeded quota"],
    ),
    (
        "old-failure-info-after-recovery-is-ignored",
        {},
        isvc(
            *READY_ALL,
            url=True,
            modelStatus={
                "transitionStatus": "UpToDate",
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                "lastFailureInfo": FAILED_LOAD["lastFailureInfo"],
            },
        ),
        "ready",
        Reason.SERVING_CHECK_SKIPPED,
        [],
    ),
    (
        "suspend-requested-not-yet-stopped",
        {"suspend": True},
        isvc(*READY_ALL, url=True),
        "progressing",
        Reason.SUSPENDING,
        ["waiting for KServe to stop"],
    ),
    (
        "suspended",
        {"suspend": True},
        isvc(cond("PredictorReady", "False"), cond("Ready", "False"), cond("Stopped", "True")),
        "suspended",
        Reason.SUSPENDED,
        ["is stopped", "spec.suspend"],
    ),
    (
        "resuming",
        {},
        isvc(cond("PredictorReady", "False"), cond("Ready", "False"), cond("Stopped", "True")),
        "progressing",
        Reason.INFERENCE_SERVICE_NOT_READY,
        ["resuming"],
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "live", "state", "reason", "fragments"),
    [c[1:] for c in ASSESS_CASES],
    ids=[c[0] for c in ASSESS_CASES],
)
def test_assess(
    kwargs: dict[str, Any],
    live: dict[str, Any],
    state: str,
    reason: Reason,
    fragments: list[str],
) -> None:
    found = assess(spec(**kwargs), live)
    explain = f"{found.outcome} details={found.details}"
    assert (found.outcome.state, found.outcome.reason) == (state, reason), explain
    for fragment in fragments:
        assert fragment in found.outcome.message, explain
    assert found.kserve.inference_service_name == "minilm"


def test_endpoint_is_status_url_plus_prefix_and_check_prefers_the_cluster_address() -> None:
    found = assess(spec(serving={"urlPrefix": "/openai/v1"}), isvc(*READY_ALL, url=True))
    assert found.endpoint == URL + "/openai/v1"
    assert found.kserve.url == URL
    assert found.check_url == ADDRESS + "/openai/v1"


def test_check_url_falls_back_to_status_url() -> None:
    live = isvc(*READY_ALL)
    live["status"]["url"] = URL + "/"
    found = assess(spec(), live)
    assert found.check_url == URL + "/v1"
    assert found.endpoint == URL + "/v1"


def test_no_check_url_until_ready_and_no_endpoint_while_suspended() -> None:
    assert assess(spec(), isvc(cond("Ready", "False"), url=True)).check_url is None
    stopped = isvc(cond("Stopped", "True"), url=True)
    assert assess(spec(suspend=True), stopped).endpoint is None


def owned_by(uid: str, name: str = "minilm", **meta: Any) -> dict[str, Any]:
    owner = {
        "apiVersion": "embeddings.ai/v1alpha1",
        "kind": "EmbeddingModel",
        "name": name,
        "uid": uid,
        "controller": True,
    }
    return {"metadata": {"name": "minilm", "ownerReferences": [owner], **meta}}


def test_our_own_object_is_no_conflict() -> None:
    assert foreign_owner(REF, owned_by("uid-1")) is None


def test_unowned_object_of_our_name_is_a_conflict() -> None:
    outcome = foreign_owner(REF, {"metadata": {"name": "minilm"}})
    assert outcome is not None
    assert (outcome.state, outcome.reason) == ("stalled", Reason.INFERENCE_SERVICE_CONFLICT)
    assert "no controller owner" in outcome.message and "delete it" in outcome.message


def test_object_of_another_controller_is_a_conflict() -> None:
    other = owned_by("uid-9", name="other")
    other["metadata"]["ownerReferences"][0]["kind"] = "NIMService"
    outcome = foreign_owner(REF, other)
    assert outcome is not None and outcome.state == "stalled"
    assert "NIMService other (uid uid-9)" in outcome.message


def test_leftover_of_a_deleted_namesake_is_waited_for() -> None:
    outcome = foreign_owner(REF, owned_by("uid-old"))
    assert outcome is not None
    assert (outcome.state, outcome.reason) == ("progressing", Reason.INFERENCE_SERVICE_NOT_READY)


# --- serving check verdicts --------------------------------------------------------------------

JUDGE_CASES = [
    ("verified", None, CheckResult(True, 384), "ready", Reason.SERVING_VERIFIED, True),
    ("verified-expected", 384, CheckResult(True, 384), "ready", Reason.SERVING_VERIFIED, True),
    ("mismatch", 768, CheckResult(True, 384), "stalled", Reason.DIMENSION_MISMATCH, False),
    (
        "unreachable",
        768,
        CheckResult(False, error="http://x.svc.cluster.local/v1 is not reachable"),
        "ready",
        Reason.SERVING_CHECK_SKIPPED,
        None,
    ),
    (
        "http-error",
        None,
        CheckResult(True, error="HTTP 500"),
        "progressing",
        Reason.SERVING_CHECK_FAILED,
        False,
    ),
]


@pytest.mark.parametrize(
    ("expected", "check", "state", "reason", "verified"),
    [c[1:] for c in JUDGE_CASES],
    ids=[c[0] for c in JUDGE_CASES],
)
def test_judge_serving(
    expected: int | None,
    check: CheckResult,
    state: str,
    reason: Reason,
    verified: bool | None,
) -> None:
    s = spec(model={"name": "m", "uri": "hf://o/m", "dimensions": expected})
    outcome, serving = judge_serving(s, "InferenceService minilm", check, NOW)
    assert (outcome.state, outcome.reason) == (state, reason), outcome
    assert serving.verified is verified
    assert serving.last_checked == "2026-11-24T03:00:00Z"
    assert serving.image is not None
    if reason == Reason.SERVING_CHECK_SKIPPED:
        assert serving.message is not None and serving.message.startswith("skipped: ")
    if reason == Reason.DIMENSION_MISMATCH:
        assert serving.dimensions == 384
        assert "spec.model.dimensions is 768" in outcome.message


def ready_status(**serving: Any) -> EmbeddingModelStatus:
    return EmbeddingModelStatus(
        observed_generation=REF.generation,
        phase=Phase.READY,
        serving=ServingStatus(**serving),
    )


@pytest.mark.parametrize(
    ("previous", "due"),
    [
        (EmbeddingModelStatus(), True),
        (ready_status(verified=True, dimensions=384, last_checked="2026-11-24T02:55:00Z"), False),
        (
            ready_status(verified=None, message="skipped: x", last_checked="2026-11-24T02:55:00Z"),
            False,
        ),
        (ready_status(verified=True, dimensions=384, last_checked="2026-11-24T02:49:59Z"), True),
        (ready_status(verified=False, last_checked="2026-11-24T02:59:00Z"), True),
    ],
    ids=["never", "fresh", "fresh-skip", "stale", "failed-last-time"],
)
def test_check_due(previous: EmbeddingModelStatus, due: bool) -> None:
    assert check_due(previous, REF.generation, NOW, interval=600) is due


def test_check_due_after_a_spec_change_or_a_non_ready_phase() -> None:
    fresh = ready_status(verified=True, dimensions=384, last_checked="2026-11-24T02:59:00Z")
    assert check_due(fresh, REF.generation + 1, NOW, interval=600)
    fresh.phase = Phase.PROGRESSING
    assert check_due(fresh, REF.generation, NOW + timedelta(seconds=1), interval=600)


def test_scale_to_zero_models_are_not_woken_by_periodic_checks() -> None:
    old = ready_status(verified=True, dimensions=384, last_checked="2026-11-24T01:00:00Z")
    assert check_interval(spec(replicas={"min": 0, "max": 1}), 600, REF.uid) is None
    assert not check_due(old, REF.generation, NOW, interval=None)
    assert check_due(old, REF.generation + 1, NOW, interval=None)  # a spec change still checks


def test_each_object_has_its_own_fixed_check_period_within_the_last_quarter() -> None:
    periods = [check_interval(spec(), 600, f"uid-{i}") for i in range(200)]
    assert all(p is not None and 450 <= p <= 600 for p in periods)
    assert periods == [check_interval(spec(), 600, f"uid-{i}") for i in range(200)]  # stable
    spread = sorted(p for p in periods if p is not None)
    assert spread[-1] - spread[0] > 120  # objects Ready together do not re-check together


def test_reuse_serving_keeps_the_verdict() -> None:
    verified = reuse_serving(
        "InferenceService minilm", ServingStatus(verified=True, dimensions=384)
    )
    assert verified.reason == Reason.SERVING_VERIFIED and "384" in verified.message
    skipped = reuse_serving(
        "InferenceService minilm", ServingStatus(verified=None, message="skipped: no DNS")
    )
    assert skipped.reason == Reason.SERVING_CHECK_SKIPPED and "no DNS" in skipped.message
