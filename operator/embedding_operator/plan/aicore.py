"""Pure planning for the AI Core backend: names, labels and the next step for the deployment.

AI Core objects cannot carry our Kubernetes identity except through names and `ext.ai.sap.com/`
labels, and configurations have no labels at all. So every remote name is derived from the
object's uid and a content hash of the serving parameters: the same spec always maps to the same
names, a restart mid-way finds what the last run created, and a changed spec maps to a new
configuration.

`plan_deployment` is the heart of it: given what was observed it returns exactly one `Step` and
the outcome to report. `plan_finalize` does the same for deletion. Neither does I/O, so every
branch is a table test (tests/unit/test_plan_aicore.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from embedding_operator.aicore.models import Deployment, DeploymentStatus, TargetStatus
from embedding_operator.api.conditions import Outcome, Reason
from embedding_operator.api.objects import Event, ObjectRef
from embedding_operator.api.spec import EmbeddingModelSpec
from embedding_operator.serving import configuration_hash

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
