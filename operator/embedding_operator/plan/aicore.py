"""Pure planning for the AI Core backend: names, labels and the next step for the deployment.

AI Core objects cannot carry our Kubernetes identity except through names and `ext.ai.sap.com/`
labels, and configurations have no labels at all. So every remote name is derived from the
object's uid and a content hash of the serving parameters: the same spec always maps to the same
names, a restart mid-way finds what the last run created, and a changed spec maps to a new
configuration.

`plan(spec, names, observed, now)` decides everything for one pass: given what AI Core and the
cluster said (`Observed`, gathered by the backend from its shared per-tenant view) it returns the
actions to execute, the outcome, the status slice, the Events and when to look again. The backend
executes the actions, folds their results into a fresh `Observed` and plans again until a plan
asks for nothing (create artifact → configuration → deployment in one pass; resume after a crash
between two POSTs is the same path). `plan_deployment` is its deployment part, `plan_finalize`
the deletion. None does I/O, so every branch is a table test (tests/unit/test_plan_aicore.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from embedding_operator.aicore.models import (
    Artifact,
    Configuration,
    Deployment,
    DeploymentStatus,
    TargetStatus,
)
from embedding_operator.api.conditions import Outcome, Reason, timestamp
from embedding_operator.api.objects import Event, ObjectRef
from embedding_operator.api.spec import EmbeddingModelSpec
from embedding_operator.api.status import AICoreStatus, EmbeddingModelStatus, Phase, ServingStatus
from embedding_operator.plan.serving_check import (
    CheckResult,
    check_interval,
    check_wait,
    judge_serving,
    reuse_serving,
)
from embedding_operator.serving import configuration_hash
from embedding_operator.settings import Intervals

LABEL_UID = "ext.ai.sap.com/embeddings.ai-uid"
LABEL_OBJECT = "ext.ai.sap.com/embeddings.ai-object"

# Deployment states in which AI Core still runs (or is about to run) something.
ACTIVE = {DeploymentStatus.PENDING, DeploymentStatus.RUNNING}
FINISHED = {DeploymentStatus.STOPPED, DeploymentStatus.DEAD, DeploymentStatus.COMPLETED}


def _short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Names:
    """Deterministic AI Core names for one EmbeddingModel."""

    artifact: str
    configuration: str
    configuration_prefix: str
    labels: dict[str, str]


def names_for(ref: ObjectRef, spec: EmbeddingModelSpec) -> Names:
    # NB: the uid prefix ties every configuration to this object (configurations have no labels),
    # and the content hash changes whenever a binding changes, giving a new configuration.
    prefix = f"{ref.name}-{ref.uid[:8]}-"
    return Names(
        artifact=f"{ref.name}-{_short_hash(ref.uid + spec.model.uri)}",
        configuration=prefix + configuration_hash(spec)[:8],
        configuration_prefix=prefix,
        labels={LABEL_UID: ref.uid, LABEL_OBJECT: f"{ref.namespace}/{ref.name}"},
    )


def owned_deployments(deployments: Sequence[Deployment], names: Names) -> list[Deployment]:
    """Deployments whose configuration this object created, oldest first."""
    ours = [
        d
        for d in deployments
        if (d.configuration_name or "").startswith(names.configuration_prefix)
    ]
    return sorted(ours, key=lambda d: (d.created_at is None, d.created_at, d.id))


def pick_current(owned: Sequence[Deployment], recorded_id: str | None) -> Deployment | None:
    """The deployment this object serves from: the recorded one, else the newest."""
    for deployment in owned:
        if deployment.id == recorded_id:
            return deployment
    return owned[-1] if owned else None


class StepKind(StrEnum):
    CREATE = "create"  # create a deployment from the desired configuration
    REPLACE = "replace"  # delete the finished current deployment, then create a new one
    PATCH = "patch"  # PATCH configurationId (same deployment, same URL)
    STOP = "stop"  # PATCH targetStatus STOPPED
    WAIT = "wait"  # nothing to do but look again soon
    VERIFY = "verify"  # running on the desired configuration: run the serving check
    DONE = "done"  # nothing to do (suspended and stopped)


@dataclass(frozen=True)
class Step:
    kind: StepKind
    outcome: Outcome
    deployment_id: str | None = None
    events: list[Event] = field(default_factory=list)
    fetch_logs: bool = False  # attach the tail of the deployment logs to a Warning Event


def _status_text(d: Deployment) -> str:
    text = f"AI Core deployment {d.id} is {d.status.value}"
    return f"{text}: {d.status_message}" if d.status_message else text


def plan_deployment(
    *,
    suspend: bool,
    desired_configuration_id: str,
    current: Deployment | None,
    recorded_id: str | None,
    was_suspended: bool,
) -> Step:
    """The one next step for the deployment, and what to report meanwhile."""
    if suspend:
        return _plan_suspend(current)
    if current is None:
        if recorded_id:
            return Step(
                StepKind.CREATE,
                Outcome.progressing(Reason.REPLACING_DEPLOYMENT, "creating a new deployment"),
                events=[
                    Event.warning(
                        "DeploymentMissing",
                        f"AI Core deployment {recorded_id} no longer exists (deleted outside "
                        "the operator); creating a new one",
                    )
                ],
            )
        return Step(
            StepKind.CREATE,
            Outcome.progressing(Reason.CREATING, "creating the AI Core deployment"),
        )
    status = current.status
    if status == DeploymentStatus.DEAD:
        if current.configuration_id == desired_configuration_id:
            # NB: replacing a DEAD deployment with the same configuration would die the same way;
            # wait for a spec change (new configuration) instead.
            return Step(
                StepKind.WAIT,
                Outcome.stalled(
                    Reason.DEPLOYMENT_DEAD,
                    f"{_status_text(current)}; fix the spec (a change creates a new deployment) "
                    "or see the deployment logs in the Events",
                ),
                deployment_id=current.id,
                fetch_logs=True,
            )
        return Step(
            StepKind.REPLACE,
            Outcome.progressing(
                Reason.REPLACING_DEPLOYMENT, f"replacing DEAD deployment {current.id}"
            ),
            deployment_id=current.id,
        )
    if status in (DeploymentStatus.STOPPED, DeploymentStatus.COMPLETED):
        if was_suspended:
            event = Event.normal(
                "Resuming",
                f"creating a new deployment to replace stopped {current.id}; AI Core cannot "
                "restart a stopped deployment, so the endpoint changes",
            )
        else:
            event = Event.warning(
                "DeploymentStopped",
                f"AI Core deployment {current.id} was stopped outside the operator; replacing it "
                "(the endpoint changes)",
            )
        return Step(
            StepKind.REPLACE,
            Outcome.progressing(Reason.REPLACING_DEPLOYMENT, f"replacing stopped {current.id}"),
            deployment_id=current.id,
            events=[event],
        )
    if status == DeploymentStatus.STOPPING:
        return Step(
            StepKind.WAIT,
            Outcome.progressing(Reason.REPLACING_DEPLOYMENT, _status_text(current)),
            deployment_id=current.id,
        )
    if status != DeploymentStatus.RUNNING:  # UNKNOWN, PENDING
        return Step(
            StepKind.WAIT,
            Outcome.progressing(Reason.DEPLOYMENT_PENDING, _status_text(current)),
            deployment_id=current.id,
        )
    if current.configuration_id != desired_configuration_id:
        return Step(
            StepKind.PATCH,
            Outcome.progressing(
                Reason.ROLLING_OUT,
                f"rolling deployment {current.id} out to configuration {desired_configuration_id}",
            ),
            deployment_id=current.id,
            events=[
                Event.normal(
                    "RolloutStarted",
                    f"deployment {current.id}: configuration {current.configuration_id} -> "
                    f"{desired_configuration_id} (same URL)",
                )
            ],
        )
    latest = current.latest_running_configuration_id
    if latest and latest != desired_configuration_id:
        return Step(
            StepKind.WAIT,
            Outcome.progressing(
                Reason.ROLLING_OUT,
                f"deployment {current.id} still serves configuration {latest}; waiting for "
                f"{desired_configuration_id} to run",
            ),
            deployment_id=current.id,
        )
    return Step(
        StepKind.VERIFY,
        Outcome.ready(Reason.SERVING_VERIFIED, f"deployment {current.id} is RUNNING"),
        deployment_id=current.id,
    )


def _plan_suspend(current: Deployment | None) -> Step:
    if current is None or current.status in FINISHED:
        return Step(
            StepKind.DONE,
            Outcome.suspended(
                Reason.SUSPENDED,
                "suspended: "
                + (
                    f"deployment {current.id} is {current.status.value}"
                    if current
                    else "no deployment"
                ),
            ),
            deployment_id=current.id if current else None,
        )
    if current.status in ACTIVE and current.target_status != TargetStatus.STOPPED:
        return Step(
            StepKind.STOP,
            Outcome.progressing(Reason.SUSPENDING, f"stopping deployment {current.id}"),
            deployment_id=current.id,
        )
    # UNKNOWN cannot be stopped yet (AI Core answers a state conflict); STOPPING just takes time.
    return Step(
        StepKind.WAIT,
        Outcome.progressing(Reason.SUSPENDING, _status_text(current)),
        deployment_id=current.id,
    )


@dataclass(frozen=True)
class Cleanup:
    """Remote calls that remove deployments we no longer serve from."""

    stop: list[str]
    delete: list[str]
    waiting: list[str]

    @property
    def done(self) -> bool:
        return not (self.stop or self.delete or self.waiting)


def plan_cleanup(owned: Sequence[Deployment], keep: str | None) -> Cleanup:
    """Stop, then delete, every owned deployment except `keep` (None: all of them)."""
    stop, delete, waiting = [], [], []
    for d in owned:
        if d.id == keep:
            continue
        if d.status in FINISHED:
            delete.append(d.id)
        elif d.status in ACTIVE and d.target_status != TargetStatus.STOPPED:
            stop.append(d.id)
        else:  # UNKNOWN, STOPPING, or already told to stop
            waiting.append(d.id)
    return Cleanup(stop=stop, delete=delete, waiting=waiting)


def hold_ready(
    previous: EmbeddingModelStatus,
    failed: Outcome,
    failing_since: datetime,
    now: datetime,
    grace: float,
) -> Outcome:
    """`failed`, unless a Ready object is within `grace` seconds of its first transient failure.

    Then it stays Ready with its reason (no Event, no flap) and the message says what fails.
    """
    if previous.phase != Phase.READY or failed.state != "progressing":
        return failed
    if (now - failing_since).total_seconds() >= grace:
        return failed
    ready = next((c for c in previous.conditions if c.type == "Ready"), None)
    if ready is None or ready.status != "True":
        return failed
    reason = Reason(ready.reason) if ready.reason in Reason._value2member_map_ else failed.reason
    base = ready.message.split(" (still Ready;")[0]
    return Outcome.ready(
        reason,
        f"{base} (still Ready; failing since {timestamp(failing_since)}, Ready=False after "
        f"{grace:.0f}s: {failed.message})",
    )


# -- the whole pass -------------------------------------------------------------------------------

#: How often a Ready model's serving check runs again (replicas.min > 0 only; see check_interval).
CHECK_INTERVAL = 600.0


def owner_prefix(configuration_name: str | None) -> str | None:
    """The `Names.configuration_prefix` a configuration name was made with (name minus hash)."""
    if not configuration_name or "-" not in configuration_name:
        return None
    return configuration_name.rsplit("-", 1)[0] + "-"


@dataclass(frozen=True)
class CreateArtifact:
    pass


@dataclass(frozen=True)
class CreateConfiguration:
    artifact_id: str


@dataclass(frozen=True)
class CreateDeployment:
    configuration_id: str


@dataclass(frozen=True)
class PatchConfiguration:
    deployment_id: str
    configuration_id: str


@dataclass(frozen=True)
class StopDeployment:
    deployment_id: str


@dataclass(frozen=True)
class DeleteDeployment:
    deployment_id: str


@dataclass(frozen=True)
class CheckServing:
    url: str


@dataclass(frozen=True)
class FetchLogs:
    deployment_id: str


Action = (
    CreateArtifact
    | CreateConfiguration
    | CreateDeployment
    | PatchConfiguration
    | StopDeployment
    | DeleteDeployment
    | CheckServing
    | FetchLogs
)


@dataclass(frozen=True)
class Template:
    """Whether the scenario and the executable of spec.aicore exist in the resource group."""

    scenario: bool = True
    executable: bool = True


@dataclass(frozen=True)
class Observed:
    """What one pass knows. `None` means "not looked at": a settled object needs only its
    deployments; template, artifacts and configurations are read when something is to be made.

    `artifacts`/`configurations` are this object's, by deterministic name; `deployments` are the
    owned ones (any configuration with our prefix), oldest first. `serving` and `logs` are results
    of this pass's own `CheckServing`/`FetchLogs`; `failing_since` is when transient failures of
    this object began (kept by the backend in memory).
    """

    status: EmbeddingModelStatus
    generation: int
    deployments: tuple[Deployment, ...] = ()
    template: Template | None = None
    artifacts: tuple[Artifact, ...] | None = None
    configurations: tuple[Configuration, ...] | None = None
    serving: CheckResult | None = None
    logs: str | None = None
    failing_since: datetime | None = None


@dataclass
class Plan:
    """Everything one planning round decided; `actions` run in order, then the backend re-plans."""

    actions: list[Action]
    outcome: Outcome
    status: AICoreStatus
    requeue: float
    endpoint: str | None = None
    serving: ServingStatus | None = None
    events: list[Event] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    failing: bool = False  # a transient failure this round (the backend keeps failing_since)


def needs_lookup(
    spec: EmbeddingModelSpec, names: Names, previous: AICoreStatus, owned: Sequence[Deployment]
) -> bool:
    """Whether the pass must read template, artifacts and configurations.

    NB: the configuration name is a hash of everything it binds, so a recorded name equal to the
    desired one means artifact and configuration were right: a settled pass reads only the
    deployments. Once nothing serves (no deployment of ours), the recorded IDs are checked again,
    so IDs AI Core forgot (its state was lost) lead back to find-or-create.
    """
    settled = bool(
        previous.configuration_name == names.configuration
        and previous.configuration_id
        and previous.artifact_id
    )
    return not settled or (not owned and not spec.suspend)


def _vanished_event(previous: AICoreStatus, artifact: bool, configuration: bool) -> Event | None:
    gone = []
    if artifact and previous.artifact_id:
        gone.append(f"artifact {previous.artifact_id}")
    if configuration and previous.configuration_id:
        gone.append(f"configuration {previous.configuration_id}")
    if not gone:
        return None
    return Event.warning(
        "RemoteStateLost",
        f"AI Core no longer knows {' and '.join(gone)} recorded in status (its state was lost "
        "or they were deleted outside the operator); creating them again",
    )


def plan(  # noqa: C901 - one decision table, read top to bottom
    spec: EmbeddingModelSpec,
    names: Names,
    observed: Observed,
    now: datetime,
    *,
    intervals: Intervals,
    grace: float = 120.0,
) -> Plan:
    """The actions, outcome, status and Events for one planning round of one object."""
    assert spec.aicore is not None
    aicore = spec.aicore
    previous_status = observed.status
    previous = previous_status.aicore or AICoreStatus()
    owned = list(observed.deployments)
    events: list[Event] = []
    details: list[str] = []

    def early(outcome: Outcome, actions: list[Action], status: AICoreStatus) -> Plan:
        requeue = intervals.stalled if outcome.state == "stalled" else intervals.pending
        return Plan(actions, outcome, status, requeue, events=events, details=details)

    artifact_id, configuration_id = previous.artifact_id, previous.configuration_id
    if needs_lookup(spec, names, previous, owned):
        template = observed.template or Template()
        rg = aicore.resource_group
        if not template.scenario:
            return early(
                Outcome.stalled(
                    Reason.SCENARIO_NOT_FOUND,
                    f"scenario '{aicore.scenario_id}' not found in resource group '{rg}': push "
                    "manifests/aicore/serving-template.yaml to the git repository your AI Core "
                    "application syncs, then refresh the application",
                ),
                [],
                previous,
            )
        if not template.executable:
            return early(
                Outcome.stalled(
                    Reason.EXECUTABLE_NOT_FOUND,
                    f"executable '{aicore.executable_id}' not found in scenario "
                    f"'{aicore.scenario_id}': push manifests/aicore/serving-template.yaml "
                    "(metadata.name is the executable id) to the repository your AI Core "
                    "application syncs",
                ),
                [],
                previous,
            )
        artifacts = [a for a in observed.artifacts or () if a.url == spec.model.uri]
        configurations = [c for c in observed.configurations or () if c.name == names.configuration]
        lost_artifact = bool(previous.artifact_id) and not any(
            a.id == previous.artifact_id for a in observed.artifacts or ()
        )
        lost_configuration = (
            bool(previous.configuration_id)
            and previous.configuration_name == names.configuration
            and not configurations
        )
        if not artifacts or not configurations:
            lost = _vanished_event(previous, lost_artifact, lost_configuration)
            if lost is not None:
                events.append(lost)
        forgotten = AICoreStatus(resource_group=aicore.resource_group)
        if not artifacts:
            details.append(f"no artifact {names.artifact} for {spec.model.uri}: create it")
            return early(
                Outcome.progressing(Reason.CREATING, "creating the AI Core artifact"),
                [CreateArtifact()],
                forgotten,
            )
        artifact_id = artifacts[0].id
        if not configurations:
            details.append(f"no configuration {names.configuration}: create it")
            return early(
                Outcome.progressing(Reason.CREATING, "creating the AI Core configuration"),
                [CreateConfiguration(artifact_id)],
                forgotten.model_copy(update={"artifact_id": artifact_id}),
            )
        configuration_id = configurations[0].id
    assert artifact_id is not None and configuration_id is not None

    current = pick_current(owned, previous.deployment_id)
    step = plan_deployment(
        suspend=spec.suspend,
        desired_configuration_id=configuration_id,
        current=current,
        recorded_id=previous.deployment_id,
        was_suspended=previous_status.phase == Phase.SUSPENDED,
    )
    events += step.events
    outcome = step.outcome
    actions: list[Action] = []
    serving: ServingStatus | None = None
    failing = False
    requeue = intervals.pending
    if step.kind == StepKind.CREATE:
        actions.append(CreateDeployment(configuration_id))
    elif step.kind == StepKind.REPLACE and step.deployment_id:
        actions += [DeleteDeployment(step.deployment_id), CreateDeployment(configuration_id)]
    elif step.kind == StepKind.PATCH and step.deployment_id:
        actions.append(PatchConfiguration(step.deployment_id, configuration_id))
    elif step.kind == StepKind.STOP and step.deployment_id:
        actions.append(StopDeployment(step.deployment_id))
    elif step.kind == StepKind.DONE:
        requeue = intervals.ready
    elif step.kind == StepKind.VERIFY and current is not None:
        url = current.deployment_url.rstrip("/") + spec.serving.url_prefix
        subject = f"AI Core deployment {current.id}"
        if observed.serving is not None:
            outcome, serving = judge_serving(
                spec, subject, observed.serving, now, unreachable="fail"
            )
            if outcome.state == "progressing" and observed.serving.transient:
                failing = True
                outcome = hold_ready(
                    previous_status, outcome, observed.failing_since or now, now, grace
                )
        elif (
            wait := check_wait(
                previous_status,
                observed.generation,
                now,
                check_interval(spec, CHECK_INTERVAL, names.configuration_prefix),
                after_failure=intervals.pending,
            )
        ) <= 0:
            details.append(f"deployment {current.id} is RUNNING: check that it serves")
            actions.append(CheckServing(url))
        elif previous_status.serving is not None and previous_status.serving.verified is not False:
            outcome = reuse_serving(subject, previous_status.serving)
        else:
            why = (previous_status.serving.message if previous_status.serving else None) or "-"
            outcome = Outcome.progressing(
                Reason.SERVING_CHECK_FAILED,
                f"{subject} is RUNNING but the embedding request failed: {why}",
            )
            # NB: nothing changes before the next check is due, so do not look before then.
            requeue = min(max(wait, intervals.pending), intervals.ready)
        if outcome.state == "ready":
            requeue = intervals.ready
        elif outcome.state == "stalled":
            requeue = intervals.stalled
    if step.fetch_logs and current is not None:
        requeue = intervals.stalled
        if previous.deployment_status != current.status.value:
            if observed.logs is None:
                actions.append(FetchLogs(current.id))
            else:
                events.append(
                    Event.warning(
                        "DeploymentDead",
                        f"AI Core deployment {current.id} is DEAD: "
                        f"{current.status_message or ''}\n{observed.logs}"[:1000],
                    )
                )

    # Deployments we no longer serve from (replaced, duplicates) are stopped, then deleted.
    if current is not None and not spec.suspend and step.kind != StepKind.REPLACE:
        cleanup = plan_cleanup(owned, keep=current.id)
        actions += [StopDeployment(d) for d in cleanup.stop]
        actions += [DeleteDeployment(d) for d in cleanup.delete]
        if cleanup.stop or cleanup.delete:
            details.append(f"clean up {', '.join(cleanup.stop + cleanup.delete)}")

    endpoint = None
    # NB: during a rollout the old configuration keeps serving at the same URL, so the endpoint
    # stays published until the deployment stops.
    if (
        current is not None
        and current.deployment_url
        and current.status in ACTIVE
        and not spec.suspend
    ):
        endpoint = current.deployment_url.rstrip("/") + spec.serving.url_prefix
    status = AICoreStatus(
        artifact_id=artifact_id,
        configuration_id=configuration_id,
        configuration_name=names.configuration,
        deployment_id=current.id if current else None,
        deployment_status=current.status.value if current else None,
        target_status=(current.target_status.value if current and current.target_status else None),
        status_message=current.status_message if current else None,
        deployment_url=(current.deployment_url or None) if current else None,
        resource_group=aicore.resource_group,
    )
    if step.kind == StepKind.REPLACE:
        # The replaced deployment is deleted this round; the new one is recorded next round.
        status = status.model_copy(
            update={
                "deployment_id": None,
                "deployment_status": None,
                "target_status": None,
                "status_message": None,
                "deployment_url": None,
            }
        )
    if actions and any(not isinstance(a, CheckServing | FetchLogs) for a in actions):
        requeue = intervals.pending
    return Plan(
        actions,
        outcome,
        status,
        requeue,
        endpoint=endpoint,
        serving=serving,
        events=events,
        details=details,
        failing=failing,
    )


@dataclass
class FinalizePlan:
    actions: list[Action]
    done: bool
    message: str
    events: list[Event] = field(default_factory=list)
    stalled: bool = False  # True: reported Stalled (the finalizer stays; retries go on)


def plan_finalize(
    spec: EmbeddingModelSpec, previous: AICoreStatus, owned: Sequence[Deployment]
) -> FinalizePlan:
    """Deletion: stop, then delete every owned deployment; done when none is left."""
    assert spec.aicore is not None
    if spec.aicore.deletion_policy == "Orphan":
        return FinalizePlan(
            [],
            True,
            "deletionPolicy Orphan",
            [
                Event.normal(
                    "Orphaned",
                    f"left AI Core deployment {previous.deployment_id or '(none)'} running "
                    "(spec.aicore.deletionPolicy: Orphan)",
                )
            ],
        )
    if not owned:
        return FinalizePlan(
            [],
            True,
            "no AI Core deployment left",
            [Event.normal("Deleted", "AI Core deployments stopped and deleted")],
        )
    cleanup = plan_cleanup(owned, keep=None)
    actions: list[Action] = [StopDeployment(d) for d in cleanup.stop]
    actions += [DeleteDeployment(d) for d in cleanup.delete]
    pending = ", ".join(d.id + "=" + d.status.value for d in owned)
    return FinalizePlan(actions, False, f"stopping and deleting AI Core deployments: {pending}")


def recorded_remotely(previous: AICoreStatus) -> list[str]:
    """What status records on AI Core, e.g. ["deployment d1", "configuration c1 (name)"]."""
    found = []
    if previous.deployment_id:
        found.append(f"deployment {previous.deployment_id}")
    if previous.configuration_id:
        name = f" ({previous.configuration_name})" if previous.configuration_name else ""
        found.append(f"configuration {previous.configuration_id}{name}")
    if previous.artifact_id:
        found.append(f"artifact {previous.artifact_id}")
    return found


def plan_finalize_unanswered(
    ref: ObjectRef,
    spec: EmbeddingModelSpec,
    previous: AICoreStatus,
    why: str,
    *,
    deletion_started: datetime | None,
    now: datetime,
    deadline: float,
) -> FinalizePlan:
    """Deletion while AI Core does not answer (`why`): the finalizer stays, so nothing is left
    running unseen, and the deletion is retried until AI Core answers. Within `deadline`
    seconds of the deletion that is a wait (Reconciling); after it, Stalled, naming what is
    still recorded on AI Core and what a user can do, so it does not look like progress."""
    assert spec.aicore is not None
    waited = (now - deletion_started).total_seconds() if deletion_started else 0.0
    if waited < deadline:
        return FinalizePlan([], False, f"waiting for AI Core to delete: {why}")
    rg = spec.aicore.resource_group
    recorded = recorded_remotely(previous)
    what = (
        f"still recorded on AI Core (resource group '{rg}'): {', '.join(recorded)}"
        if recorded
        else "nothing is recorded in status, but a create cut short may have left "
        f"configurations or deployments named {names_for(ref, spec).configuration_prefix}* in "
        f"resource group '{rg}'"
    )
    message = (
        f"AI Core has not answered for {int(waited)}s of deletion ({why}); {what}. The "
        "finalizer stays so nothing is left running, and the deletion finishes by itself once "
        "AI Core answers. Fix: restore the operator's access to AI Core (the AI_API_URL of the "
        f"service key in Secret {ref.namespace}/{spec.aicore.secret_ref.name}); or stop and "
        "delete these yourself (AI Launchpad or the AI API), then remove the finalizer: "
        f"kubectl patch emb {ref.name} -n {ref.namespace} --type=merge "
        """-p '{"metadata":{"finalizers":null}}'"""
    )
    return FinalizePlan([], False, message, stalled=True)
