"""kstatus conditions: the closed set of reasons and the pure functions that set them.

Three types, as kstatus reads them: `Ready` (the summary tools wait on), `Reconciling` and
`Stalled` (abnormal-true: present and True only while the operator works, or is stuck on something
a person must fix). Every condition is stamped with the generation it was computed for, and
`lastTransitionTime` moves only when `status` flips, so a re-run of an unchanged reconcile writes
an identical status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from embedding_operator.api.status import Condition, Phase

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
_ORDER = {READY: 0, RECONCILING: 1, STALLED: 2}


class Reason(StrEnum):
    """Every reason the operator can report. Stalled ones are listed in docs/troubleshooting.md."""

    # Ready=True
    SERVING_VERIFIED = "ServingVerified"
    SERVING_CHECK_SKIPPED = "ServingCheckSkipped"
    # Reconciling=True (transient; the operator retries by itself)
    CREATING = "Creating"
    UPDATING = "Updating"
    DEPLOYMENT_PENDING = "DeploymentPending"
    ROLLING_OUT = "RollingOut"
    AICORE_UNAVAILABLE = "AICoreUnavailable"
    AICORE_CONFLICT = "AICoreConflict"
    SERVING_CHECK_FAILED = "ServingCheckFailed"
    REPLACING_DEPLOYMENT = "ReplacingDeployment"
    INFERENCE_SERVICE_NOT_READY = "InferenceServiceNotReady"
    SUSPENDING = "Suspending"
    DELETING = "Deleting"
    INTERNAL_ERROR = "InternalError"
    # Stalled=True (a person must act; each has a row in docs/troubleshooting.md)
    INVALID_SPEC = "InvalidSpec"
    SECRET_NOT_FOUND = "SecretNotFound"
    SECRET_FORBIDDEN = "SecretForbidden"
    SERVICE_KEY_INVALID = "ServiceKeyInvalid"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    RESOURCE_GROUP_NOT_FOUND = "ResourceGroupNotFound"
    SCENARIO_NOT_FOUND = "ScenarioNotFound"
    EXECUTABLE_NOT_FOUND = "ExecutableNotFound"
    AICORE_REJECTED = "AICoreRejected"
    DEPLOYMENT_DEAD = "DeploymentDead"
    DIMENSION_MISMATCH = "DimensionMismatch"
    KSERVE_NOT_INSTALLED = "KServeNotInstalled"
    INFERENCE_SERVICE_FAILED = "InferenceServiceFailed"
    INFERENCE_SERVICE_REJECTED = "InferenceServiceRejected"
    INFERENCE_SERVICE_CONFLICT = "InferenceServiceConflict"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"  # the predictor pod's, as the kubelet names it
    IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
    CREATE_CONTAINER_ERROR = "CreateContainerError"
    DELETION_BLOCKED = "DeletionBlocked"
    EMBEDDING_SPACE_CHANGE = "EmbeddingSpaceChange"
    # Ready=False without Stalled
    SUSPENDED = "Suspended"


@dataclass(frozen=True)
class Outcome:
    """What one reconcile concluded, before it is turned into conditions.

    `state` picks the pattern: "ready", "progressing", "stalled" or "suspended".
    """

    state: str
    reason: Reason
    message: str

    @classmethod
    def ready(cls, reason: Reason, message: str) -> Outcome:
        return cls("ready", reason, message)

    @classmethod
    def progressing(cls, reason: Reason, message: str) -> Outcome:
        return cls("progressing", reason, message)

    @classmethod
    def stalled(cls, reason: Reason, message: str) -> Outcome:
        return cls("stalled", reason, message)

    @classmethod
    def suspended(cls, reason: Reason, message: str) -> Outcome:
        return cls("suspended", reason, message)

    @property
    def phase(self) -> Phase:
        return {
            "ready": Phase.READY,
            "progressing": Phase.PROGRESSING,
            "stalled": Phase.FAILED,
            "suspended": Phase.SUSPENDED,
        }[self.state]


def timestamp(now: datetime) -> str:
    """RFC 3339 at whole seconds, so re-computed conditions compare equal."""
    return now.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def set_condition(
    conditions: Sequence[Condition],
    *,
    type: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Return conditions with `type` set; keeps lastTransitionTime unless status flips."""
    previous = next((c for c in conditions if c.type == type), None)
    changed = previous is None or previous.status != status
    new = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=timestamp(now) if changed else previous.last_transition_time,  # type: ignore[union-attr]
        observed_generation=generation,
    )
    rest = [c for c in conditions if c.type != type]
    return sort_conditions([*rest, new])


def sort_conditions(conditions: Iterable[Condition]) -> list[Condition]:
    """Ready first, then Reconciling, Stalled, then anything else alphabetically (for kubectl)."""
    return sorted(conditions, key=lambda c: (_ORDER.get(c.type, 99), c.type))


def conditions_for(
    outcome: Outcome, current: Sequence[Condition], *, generation: int, now: datetime
) -> list[Condition]:
    """All three kstatus conditions for one outcome; Ready is derived, never set on its own."""
    ready = outcome.state == "ready"
    reconciling = outcome.state == "progressing"
    stalled = outcome.state == "stalled"
    result = list(current)
    for type_, on in ((READY, ready), (RECONCILING, reconciling), (STALLED, stalled)):
        # NB: abnormal-true conditions stay present as False (not removed) so Argo CD and
        # `kubectl wait --for=condition=Stalled=False` see them on the current generation.
        result = set_condition(
            result,
            type=type_,
            status="True" if on else "False",
            reason=outcome.reason,
            message=outcome.message if on or type_ == READY else "",
            generation=generation,
            now=now,
        )
    return result


def get_condition(conditions: Sequence[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)
