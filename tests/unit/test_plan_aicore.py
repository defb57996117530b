"""The AI Core plan: one table row per situation the deployment can be in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from embedding_operator.aicore.models import Deployment
from embedding_operator.api.spec import parse_spec
from embedding_operator.backends.base import ObjectRef
from embedding_operator.plan.aicore import (
    StepKind,
    names_for,
    owned_deployments,
    pick_current,
    plan_cleanup,
    plan_deployment,
)

CFG = "cfg-new"
T0 = datetime(2026, 11, 24, tzinfo=UTC)


def dep(
    status: str,
    config: str = CFG,
    *,
    id: str = "d1",
    target: str | None = None,
    latest: str | None = None,
    name: str = "m-12345678-aaaa",
    age: int = 0,
) -> Deployment:
    return Deployment.model_validate(
        {
            "id": id,
            "configurationId": config,
            "configurationName": name,
            "status": status,
            "targetStatus": target,
            "latestRunningConfigurationId": latest,
            "deploymentUrl": f"http://ai/v2/inference/deployments/{id}",
            "statusMessage": "boom" if status == "DEAD" else None,
            "createdAt": (T0 + timedelta(seconds=age)).isoformat(),
        }
    )


CASES = [
    # id, suspend, current, recorded_id, was_suspended, kind, outcome state, reason
    ("first-create", False, None, None, False, StepKind.CREATE, "progressing", "Creating"),
    (
        "deleted-behind-our-back",
        False,
        None,
        "d0",
        False,
        StepKind.CREATE,
        "progressing",
        "ReplacingDeployment",
    ),
    (
        "unknown",
        False,
        dep("UNKNOWN"),
        "d1",
        False,
        StepKind.WAIT,
        "progressing",
        "DeploymentPending",
    ),
    (
        "pending",
        False,
        dep("PENDING"),
        "d1",
        False,
        StepKind.WAIT,
        "progressing",
        "DeploymentPending",
    ),
    (
        "running-current",
        False,
        dep("RUNNING"),
        "d1",
        False,
        StepKind.VERIFY,
        "ready",
        "ServingVerified",
    ),
    (
        "running-old-config",
        False,
        dep("RUNNING", "cfg-old"),
        "d1",
        False,
        StepKind.PATCH,
        "progressing",
        "RollingOut",
    ),
    (
        "rollout-in-flight",
        False,
        dep("RUNNING", latest="cfg-old"),
        "d1",
        False,
        StepKind.WAIT,
        "progressing",
        "RollingOut",
    ),
    (
        "dead-same-config",
        False,
        dep("DEAD"),
        "d1",
        False,
        StepKind.WAIT,
        "stalled",
        "DeploymentDead",
    ),
    (
        "dead-after-spec-change",
        False,
        dep("DEAD", "cfg-old"),
        "d1",
        False,
        StepKind.REPLACE,
        "progressing",
        "ReplacingDeployment",
    ),
    (
        "stopped-outside",
        False,
        dep("STOPPED"),
        "d1",
        False,
        StepKind.REPLACE,
        "progressing",
        "ReplacingDeployment",
    ),
    (
        "resume",
        False,
        dep("STOPPED"),
        "d1",
        True,
        StepKind.REPLACE,
        "progressing",
        "ReplacingDeployment",
    ),
    (
        "stopping",
        False,
        dep("STOPPING"),
        "d1",
        False,
        StepKind.WAIT,
        "progressing",
        "ReplacingDeployment",
    ),
    (
        "suspend-running",
        True,
        dep("RUNNING"),
        "d1",
        False,
        StepKind.STOP,
        "progressing",
        "Suspending",
    ),
    (
        "suspend-stop-sent",
        True,
        dep("RUNNING", target="STOPPED"),
        "d1",
        False,
        StepKind.WAIT,
        "progressing",
        "Suspending",
    ),
    (
        "suspend-unknown",
        True,
        dep("UNKNOWN"),
        "d1",
        False,
        StepKind.WAIT,
        "progressing",
        "Suspending",
    ),
    (
        "suspend-stopping",
        True,
        dep("STOPPING"),
        "d1",
        False,
        StepKind.WAIT,
        "progressing",
        "Suspending",
    ),
    ("suspended", True, dep("STOPPED"), "d1", True, StepKind.DONE, "suspended", "Suspended"),
    ("suspend-nothing", True, None, None, False, StepKind.DONE, "suspended", "Suspended"),
]


@pytest.mark.parametrize(
    "suspend,current,recorded,was_suspended,kind,state,reason",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan_deployment(suspend, current, recorded, was_suspended, kind, state, reason):
    step = plan_deployment(
        suspend=suspend,
        desired_configuration_id=CFG,
        current=current,
        recorded_id=recorded,
        was_suspended=was_suspended,
    )
    assert (step.kind, step.outcome.state, step.outcome.reason) == (kind, state, reason), step
    if current is not None and kind != StepKind.CREATE:
        assert step.deployment_id == current.id


def test_dead_reports_ai_core_message_and_asks_for_logs():
    step = plan_deployment(
        suspend=False,
        desired_configuration_id=CFG,
        current=dep("DEAD"),
        recorded_id="d1",
        was_suspended=False,
    )
    assert "boom" in step.outcome.message and step.fetch_logs


def test_events_tell_resume_from_external_stop():
    outside = plan_deployment(
        suspend=False,
        desired_configuration_id=CFG,
        current=dep("STOPPED"),
        recorded_id="d1",
        was_suspended=False,
    )
    resume = plan_deployment(
        suspend=False,
        desired_configuration_id=CFG,
        current=dep("STOPPED"),
        recorded_id="d1",
        was_suspended=True,
    )
    assert [(e.type, e.reason) for e in outside.events] == [("Warning", "DeploymentStopped")]
    assert [(e.type, e.reason) for e in resume.events] == [("Normal", "Resuming")]
    assert "endpoint changes" in resume.events[0].message


SPEC = {
    "backend": "aicore",
    "model": {"name": "minilm", "uri": "ai://default/models/minilm"},
    "aicore": {"secretRef": {"name": "key"}},
}
REF = ObjectRef(name="m", namespace="ns", uid="12345678-abcd-ef00-0000-000000000000", generation=1)


def test_names_are_deterministic_and_change_with_the_spec():
    a = names_for(REF, parse_spec(SPEC))
    assert a == names_for(REF, parse_spec(SPEC))
    assert a.configuration.startswith("m-12345678-")
    changed = parse_spec({**SPEC, "serving": {"batchSize": 64}})
    b = names_for(REF, changed)
    assert b.configuration != a.configuration and b.configuration_prefix == a.configuration_prefix
    assert b.artifact == a.artifact  # same weights, same artifact
    other = ObjectRef(name="m", namespace="ns", uid="99999999-0000", generation=1)
    assert names_for(other, parse_spec(SPEC)).configuration_prefix != a.configuration_prefix
    assert all(k.startswith("ext.ai.sap.com/") for k in a.labels)


def test_owned_and_current():
    names = names_for(REF, parse_spec(SPEC))
    mine_old = dep("STOPPED", id="d1", name=names.configuration, age=0)
    mine_new = dep("RUNNING", id="d2", name=names.configuration, age=10)
    theirs = dep("RUNNING", id="d3", name="other-11111111-aaaa", age=5)
    owned = owned_deployments([mine_new, theirs, mine_old], names)
    assert [d.id for d in owned] == ["d1", "d2"]
    assert pick_current(owned, "d1").id == "d1"
    assert pick_current(owned, None).id == "d2"
    assert pick_current(owned, "gone").id == "d2"
    assert pick_current([], "d1") is None


def test_cleanup_stops_then_deletes_all_but_the_kept_one():
    owned = [
        dep("RUNNING", id="a"),
        dep("STOPPED", id="b"),
        dep("DEAD", id="c"),
        dep("STOPPING", id="d"),
        dep("RUNNING", id="e", target="STOPPED"),
        dep("RUNNING", id="keep"),
    ]
    cleanup = plan_cleanup(owned, keep="keep")
    assert (cleanup.stop, cleanup.delete, cleanup.waiting) == (["a"], ["b", "c"], ["d", "e"])
    assert not cleanup.done
    assert plan_cleanup([], keep=None).done
