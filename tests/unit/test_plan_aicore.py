"""The AI Core plan: one table row per situation the deployment can be in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from embedding_operator.aicore.models import Artifact, Configuration, Deployment
from embedding_operator.api.conditions import Outcome, Reason, conditions_for
from embedding_operator.api.spec import parse_spec
from embedding_operator.api.status import (
    AICoreStatus,
    EmbeddingModelStatus,
    Phase,
    ServingStatus,
)
from embedding_operator.backends.base import ObjectRef
from embedding_operator.plan.aicore import (
    CheckServing,
    CreateArtifact,
    CreateConfiguration,
    CreateDeployment,
    DeleteDeployment,
    Observed,
    PatchConfiguration,
    StepKind,
    StopDeployment,
    Template,
    names_for,
    owned_deployments,
    pick_current,
    plan,
    plan_cleanup,
    plan_deployment,
    plan_finalize,
    plan_finalize_unanswered,
)
from embedding_operator.plan.serving_check import CheckResult
from embedding_operator.settings import Intervals

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


# -- the whole pass: plan(spec, names, observed, now) ---------------------------------------------

INTERVALS = Intervals(pending=5, ready=60, stalled=30, retry_max=60)
PRESENT = Template()
NAMES = names_for(REF, parse_spec(SPEC))
ARTIFACT = Artifact(
    id="a1", name=NAMES.artifact, kind="model", url=SPEC["model"]["uri"], scenario_id="s"
)
CONFIG = Configuration(id="c1", name=NAMES.configuration, scenario_id="s", executable_id="e")
SETTLED = AICoreStatus(
    artifact_id="a1",
    configuration_id="c1",
    configuration_name=NAMES.configuration,
    deployment_id="d1",
    resource_group="default",
)


def mine(status: str, config: str = "c1", **kw) -> Deployment:
    return dep(status, config, name=NAMES.configuration, **kw)


def status_of(
    aicore: AICoreStatus | None = None,
    phase: Phase | None = None,
    serving: ServingStatus | None = None,
) -> EmbeddingModelStatus:
    conditions = []
    if phase == Phase.READY:
        ok = Outcome.ready(Reason.SERVING_VERIFIED, "deployment d1 serves 384-dimensional")
        conditions = conditions_for(ok, [], generation=1, now=T0)
    return EmbeddingModelStatus(
        aicore=aicore, phase=phase, serving=serving, observed_generation=1, conditions=conditions
    )


def seen(
    status: EmbeddingModelStatus,
    deployments=(),
    *,
    looked: bool = True,
    artifacts=(ARTIFACT,),
    configurations=(CONFIG,),
    template=PRESENT,
    **kw,
) -> Observed:
    if not looked:
        return Observed(status=status, generation=1, deployments=tuple(deployments), **kw)
    return Observed(
        status=status,
        generation=1,
        deployments=tuple(deployments),
        template=template,
        artifacts=tuple(artifacts),
        configurations=tuple(configurations),
        **kw,
    )


VERIFIED = ServingStatus(verified=True, dimensions=384, last_checked="2026-11-24T00:00:00Z")
NOW = T0 + timedelta(seconds=30)

PLAN_CASES = [
    # id, spec overrides, observed, actions, state, reason, event reasons
    (
        "first-create",
        {},
        seen(status_of(), artifacts=(), configurations=()),
        [CreateArtifact()],
        "progressing",
        "Creating",
        [],
    ),
    (
        "resume-after-crash-between-two-posts",
        {},
        seen(status_of(), configurations=()),
        [CreateConfiguration("a1")],
        "progressing",
        "Creating",
        [],
    ),
    (
        "configuration-made-no-deployment-yet",
        {},
        seen(status_of()),
        [CreateDeployment("c1")],
        "progressing",
        "Creating",
        [],
    ),
    (
        "pending",
        {},
        seen(status_of(SETTLED), [mine("PENDING")], looked=False),
        [],
        "progressing",
        "DeploymentPending",
        [],
    ),
    (
        "running-check-due",
        {},
        seen(status_of(SETTLED), [mine("RUNNING")], looked=False),
        [CheckServing("http://ai/v2/inference/deployments/d1/v1")],
        "ready",
        "ServingVerified",
        [],
    ),
    (
        "running-served",
        {},
        seen(
            status_of(SETTLED),
            [mine("RUNNING")],
            looked=False,
            serving=CheckResult(reachable=True, dimensions=384),
        ),
        [],
        "ready",
        "ServingVerified",
        [],
    ),
    (
        "ready-check-not-due",
        {},
        seen(status_of(SETTLED, Phase.READY, VERIFIED), [mine("RUNNING")], looked=False),
        [],
        "ready",
        "ServingVerified",
        [],
    ),
    (
        "ready-rides-out-a-503",
        {},
        seen(
            status_of(SETTLED, Phase.READY, VERIFIED),
            [mine("RUNNING")],
            looked=False,
            serving=CheckResult(reachable=True, error="HTTP 503", transient=True),
            failing_since=NOW - timedelta(seconds=10),
        ),
        [],
        "ready",
        "ServingVerified",
        [],
    ),
    (
        "ready-503-past-the-window",
        {},
        seen(
            status_of(SETTLED, Phase.READY, VERIFIED),
            [mine("RUNNING")],
            looked=False,
            serving=CheckResult(reachable=True, error="HTTP 503", transient=True),
            failing_since=NOW - timedelta(seconds=300),
        ),
        [],
        "progressing",
        "ServingCheckFailed",
        [],
    ),
    (
        "unreachable-ai-core-gateway-is-a-failure",
        {},
        seen(
            status_of(SETTLED),
            [mine("RUNNING")],
            looked=False,
            serving=CheckResult(reachable=False, error="refused", transient=True),
        ),
        [],
        "progressing",
        "ServingCheckFailed",
        [],
    ),
    (
        "deleted-behind-our-back",
        {},
        seen(status_of(SETTLED), []),
        [CreateDeployment("c1")],
        "progressing",
        "ReplacingDeployment",
        ["DeploymentMissing"],
    ),
    (
        "stopped-behind-our-back",
        {},
        seen(status_of(SETTLED), [mine("STOPPED")], looked=False),
        [DeleteDeployment("d1"), CreateDeployment("c1")],
        "progressing",
        "ReplacingDeployment",
        ["DeploymentStopped"],
    ),
    (
        "remote-state-lost",
        {},
        seen(status_of(SETTLED), [], artifacts=(), configurations=()),
        [CreateArtifact()],
        "progressing",
        "Creating",
        ["RemoteStateLost"],
    ),
    (
        "rollout",
        {"serving": {"batchSize": 64}},
        None,  # built below: the desired configuration differs from the running one
        "rollout",
        "progressing",
        "RollingOut",
        ["RolloutStarted"],
    ),
    (
        "suspend",
        {"suspend": True},
        seen(status_of(SETTLED), [mine("RUNNING")], looked=False),
        [StopDeployment("d1")],
        "progressing",
        "Suspending",
        [],
    ),
    (
        "suspended",
        {"suspend": True},
        seen(status_of(SETTLED, Phase.SUSPENDED), [mine("STOPPED")], looked=False),
        [],
        "suspended",
        "Suspended",
        [],
    ),
    (
        "duplicate-left-by-an-interrupted-create",
        {},
        seen(
            status_of(SETTLED, Phase.READY, VERIFIED),
            [mine("RUNNING"), mine("RUNNING", id="d2", age=5)],
            looked=False,
        ),
        [StopDeployment("d2")],
        "ready",
        "ServingVerified",
        [],
    ),
    (
        "scenario-missing",
        {},
        seen(status_of(), template=Template(scenario=False, executable=False)),
        [],
        "stalled",
        "ScenarioNotFound",
        [],
    ),
    (
        "executable-missing",
        {},
        seen(status_of(), template=Template(executable=False)),
        [],
        "stalled",
        "ExecutableNotFound",
        [],
    ),
]


def _rollout_case(spec):
    names = names_for(REF, spec)
    new = Configuration(id="c2", name=names.configuration, scenario_id="s", executable_id="e")
    observed = seen(
        status_of(SETTLED, Phase.READY, VERIFIED), [mine("RUNNING")], configurations=(new,)
    )
    return names, observed, [PatchConfiguration("d1", "c2")]


@pytest.mark.parametrize(
    "overrides,observed,actions,state,reason,events",
    [c[1:] for c in PLAN_CASES],
    ids=[c[0] for c in PLAN_CASES],
)
def test_plan(overrides, observed, actions, state, reason, events):
    spec = parse_spec({**SPEC, **overrides})
    names = names_for(REF, spec)
    if actions == "rollout":
        names, observed, actions = _rollout_case(spec)
    decided = plan(spec, names, observed, NOW, intervals=INTERVALS)
    assert decided.actions == actions, decided
    assert (decided.outcome.state, decided.outcome.reason) == (state, reason), decided.outcome
    assert [e.reason for e in decided.events] == events


def test_plan_records_ids_and_publishes_the_endpoint_once_served():
    observed = seen(
        status_of(SETTLED),
        [mine("RUNNING")],
        looked=False,
        serving=CheckResult(reachable=True, dimensions=384),
    )
    decided = plan(parse_spec(SPEC), NAMES, observed, NOW, intervals=INTERVALS)
    assert decided.status.deployment_id == "d1" and decided.status.configuration_id == "c1"
    assert decided.endpoint == "http://ai/v2/inference/deployments/d1/v1"
    assert decided.serving is not None and decided.serving.dimensions == 384
    assert decided.requeue == INTERVALS.ready


def test_ready_message_says_it_rides_out_a_failure():
    observed = seen(
        status_of(SETTLED, Phase.READY, VERIFIED),
        [mine("RUNNING")],
        looked=False,
        serving=CheckResult(reachable=True, error="HTTP 503 busy", transient=True),
        failing_since=NOW - timedelta(seconds=10),
    )
    decided = plan(parse_spec(SPEC), NAMES, observed, NOW, intervals=INTERVALS)
    assert "still Ready" in decided.outcome.message and "HTTP 503 busy" in decided.outcome.message
    assert decided.failing


def test_remote_state_lost_says_what_vanished():
    decided = plan(
        parse_spec(SPEC),
        NAMES,
        seen(status_of(SETTLED), [], artifacts=(), configurations=()),
        NOW,
        intervals=INTERVALS,
    )
    lost = [e for e in decided.events if e.reason == "RemoteStateLost"]
    assert lost and "artifact a1" in lost[0].message and "configuration c1" in lost[0].message
    assert decided.status.artifact_id is None  # forgotten: find-or-create again


def test_failing_checks_are_spaced_out_not_sent_every_poll():
    failed = ServingStatus(verified=False, message="HTTP 503", last_checked="2026-11-24T00:00:20Z")
    observed = seen(status_of(SETTLED, Phase.PROGRESSING, failed), [mine("RUNNING")], looked=False)
    now = datetime(2026, 11, 24, 0, 0, 22, tzinfo=UTC)
    decided = plan(parse_spec(SPEC), NAMES, observed, now, intervals=INTERVALS)
    assert decided.actions == [] and decided.outcome.reason == "ServingCheckFailed"
    later = plan(
        parse_spec(SPEC), NAMES, observed, now + timedelta(seconds=10), intervals=INTERVALS
    )
    assert [type(a) for a in later.actions] == [CheckServing]


FINALIZE_CASES = [
    ("orphan", "Orphan", [mine("RUNNING")], [], True),
    ("nothing-left", "Delete", [], [], True),
    ("running", "Delete", [mine("RUNNING")], [StopDeployment("d1")], False),
    ("stopped", "Delete", [mine("STOPPED")], [DeleteDeployment("d1")], False),
    ("stopping", "Delete", [mine("STOPPING")], [], False),
]


@pytest.mark.parametrize(
    "policy,owned,actions,done", [c[1:] for c in FINALIZE_CASES], ids=[c[0] for c in FINALIZE_CASES]
)
def test_plan_finalize(policy, owned, actions, done):
    spec = parse_spec({**SPEC, "aicore": {**SPEC["aicore"], "deletionPolicy": policy}})
    decided = plan_finalize(spec, SETTLED, owned)
    assert (decided.actions, decided.done) == (actions, done)


DEADLINE = 300.0
UNANSWERED_CASES = [
    # id, recorded status, seconds since the deletion began (None: no timestamp), stalled,
    # what the message must name
    ("within-the-deadline", SETTLED, 299, False, ["waiting for AI Core", "ConnectError"]),
    ("no-deletion-timestamp", SETTLED, None, False, ["waiting for AI Core"]),
    (
        "past-the-deadline",
        SETTLED,
        300,
        True,
        [
            "has not answered for 300s",
            "deployment d1",
            f"configuration c1 ({NAMES.configuration})",
            "artifact a1",
            "resource group 'default'",
            "Secret ns/key",
            "finishes by itself",
            """kubectl patch emb m -n ns --type=merge -p '{"metadata":{"finalizers":null}}'""",
        ],
    ),
    (
        "past-the-deadline-nothing-recorded",
        AICoreStatus(),
        900,
        True,
        ["nothing is recorded", f"named {NAMES.configuration_prefix}*"],
    ),
]


@pytest.mark.parametrize(
    "recorded,waited,stalled,named",
    [c[1:] for c in UNANSWERED_CASES],
    ids=[c[0] for c in UNANSWERED_CASES],
)
def test_a_deletion_aicore_does_not_answer_is_stalled_after_the_deadline(
    recorded, waited, stalled, named
):
    started = None if waited is None else T0
    now = T0 + timedelta(seconds=waited or 10_000)
    decided = plan_finalize_unanswered(
        REF,
        parse_spec(SPEC),
        recorded,
        "AI Core unreachable: ConnectError",
        deletion_started=started,
        now=now,
        deadline=DEADLINE,
    )
    # The finalizer always stays and nothing is done remotely: only AI Core answering ends it.
    assert (decided.actions, decided.done, decided.stalled) == ([], False, stalled)
    for text in named:
        assert text in decided.message, (text, decided.message)
