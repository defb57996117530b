"""Turn a backend's `Reconciled` value into the next status, and status changes into Events (pure).

Kept apart from the I/O shell so "what does the user see after this reconcile" is a table test: the
previous status plus the outcome gives the new status, and the difference between the two gives the
Events — one per transition, never one per poll. `Reconciled` and `Finalized`, the values a backend
returns, are defined here (below the plan and the backends) so pure code can build and read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from embedding_operator.api.conditions import (
    READY,
    STALLED,
    Outcome,
    Reason,
    conditions_for,
    get_condition,
)
from embedding_operator.api.objects import Event
from embedding_operator.api.status import (
    AICoreStatus,
    EmbeddingModelStatus,
    EmbeddingSpaceStatus,
    KServeStatus,
    Phase,
    ServingStatus,
)
from embedding_operator.redact import redact_tree


@dataclass
class Reconciled:
    """What one reconcile concluded. `requeue_after` is when to look again, in seconds."""

    outcome: Outcome
    requeue_after: float
    endpoint: str | None = None
    aicore: AICoreStatus | None = None
    kserve: KServeStatus | None = None
    serving: ServingStatus | None = None
    events: list[Event] = field(default_factory=list)
    #: Set by the shell (reconciler.py), not by backends: see plan/embedding_space.py.
    embedding_space: EmbeddingSpaceStatus | None = None


@dataclass
class Finalized:
    """Progress of a deletion. The finalizer is removed only when `done` is True."""

    done: bool
    message: str
    retry_after: float = 5.0
    stalled: bool = False  # True: only a person can unblock it; `message` says how
    events: list[Event] = field(default_factory=list)


def build_status(
    previous: EmbeddingModelStatus, result: Reconciled, *, generation: int, now: datetime
) -> EmbeddingModelStatus:
    """The status to write after one reconcile; backend sections absent from `result` are kept."""
    return EmbeddingModelStatus(
        observed_generation=generation,
        phase=result.outcome.phase,
        endpoint=result.endpoint,
        conditions=conditions_for(
            result.outcome, previous.conditions, generation=generation, now=now
        ),
        aicore=result.aicore if result.aicore is not None else previous.aicore,
        kserve=result.kserve if result.kserve is not None else previous.kserve,
        serving=result.serving if result.serving is not None else previous.serving,
        embedding_space=(
            result.embedding_space
            if result.embedding_space is not None
            else previous.embedding_space
        ),
    )


def deleting_status(
    previous: EmbeddingModelStatus,
    message: str,
    *,
    generation: int,
    now: datetime,
    stalled: bool = False,
) -> EmbeddingModelStatus:
    """Status while the finalizer tears down remote objects (Stalled when a person must act)."""
    outcome = (
        Outcome.stalled(Reason.DELETION_BLOCKED, message)
        if stalled
        else Outcome.progressing(Reason.DELETING, message)
    )
    status = build_status(
        previous,
        Reconciled(outcome, requeue_after=0),
        generation=generation,
        now=now,
    )
    status.phase = Phase.DELETING
    status.endpoint = previous.endpoint
    return status


def transition_events(previous: EmbeddingModelStatus, current: EmbeddingModelStatus) -> list[Event]:
    """Events for what changed in Ready/Stalled: one Event per transition, not per poll."""
    events: list[Event] = []
    old_ready, new_ready = (get_condition(s.conditions, READY) for s in (previous, current))
    old_stalled, new_stalled = (get_condition(s.conditions, STALLED) for s in (previous, current))
    if new_stalled and new_stalled.status == "True":
        if not old_stalled or (old_stalled.status, old_stalled.reason, old_stalled.message) != (
            new_stalled.status,
            new_stalled.reason,
            new_stalled.message,
        ):
            events.append(Event.warning(new_stalled.reason, new_stalled.message))
    elif new_ready and (
        not old_ready
        or (old_ready.status, old_ready.reason) != (new_ready.status, new_ready.reason)
    ):
        events.append(Event.normal(new_ready.reason, new_ready.message))
    return events


def merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 merge patch from `old` to `new`: keys that disappeared are set to null."""
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif value != before:
            patch[key] = value
    return patch


def dump_status(status: EmbeddingModelStatus) -> dict[str, Any]:
    return status.model_dump(by_alias=True, exclude_none=True, mode="json")


def redact_status(status: EmbeddingModelStatus) -> EmbeddingModelStatus:
    """`status` with every message (conditions, serving, AI Core) passed through the redactor."""
    return EmbeddingModelStatus.model_validate(redact_tree(dump_status(status)))
