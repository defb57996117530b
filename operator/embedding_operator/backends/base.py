"""The contract between the kopf shell and a backend (AI Core, KServe).

A backend is level-triggered: `reconcile(ctx)` reads the spec and the remote state afresh every
time and returns a `Reconciled` value — the outcome, the backend's slice of status, Events to
post, and when to look again. It never writes the EmbeddingModel itself: the shell (runner.py)
turns the value into one status patch, so there is exactly one writer and one place where
conditions are computed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from embedding_operator.api.conditions import Outcome
from embedding_operator.api.spec import GROUP, KIND, VERSION, EmbeddingModelSpec
from embedding_operator.api.status import (
    AICoreStatus,
    EmbeddingModelStatus,
    EmbeddingSpaceStatus,
    KServeStatus,
    ServingStatus,
)


@dataclass(frozen=True)
class ObjectRef:
    """Identity of one EmbeddingModel."""

    name: str
    namespace: str
    uid: str
    generation: int

    def owner_reference(self) -> dict[str, Any]:
        """For children in the same namespace; garbage collection deletes them with us."""
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the EmbeddingModel. Never put secrets in `message`."""

    type: str  # "Normal" or "Warning"
    reason: str
    message: str

    @classmethod
    def normal(cls, reason: str, message: str) -> Event:
        return cls("Normal", reason, message)

    @classmethod
    def warning(cls, reason: str, message: str) -> Event:
        return cls("Warning", reason, message)


@dataclass(frozen=True)
class ReconcileContext:
    """Everything one reconcile may read: the object as last seen, and the clock."""

    ref: ObjectRef
    spec: EmbeddingModelSpec
    status: EmbeddingModelStatus
    annotations: dict[str, str]
    now: datetime
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]


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
    events: list[Event] = field(default_factory=list)


class Backend(Protocol):
    """One per `spec.backend`; holds its clients, created once at operator start."""

    async def reconcile(self, ctx: ReconcileContext) -> Reconciled: ...

    async def finalize(self, ctx: ReconcileContext) -> Finalized: ...
