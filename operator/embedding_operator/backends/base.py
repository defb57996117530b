"""The contract between the kopf shell and a backend (AI Core, KServe).

A backend is level-triggered: `reconcile(ctx)` reads the spec and the remote state afresh every
time and returns a `Reconciled` value — the outcome, the backend's slice of status, Events to
post, and when to look again. It never writes the EmbeddingModel itself: the shell (runner.py)
turns the value into one status patch, so there is exactly one writer and one place where
conditions are computed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from embedding_operator.api.objects import Event, ObjectRef
from embedding_operator.api.spec import EmbeddingModelSpec
from embedding_operator.api.status import EmbeddingModelStatus
from embedding_operator.report import Finalized, Reconciled

# NB: the value types live below the plan layer (api/objects.py, report.py); they are re-exported
# here because this module is the contract a backend implements.
__all__ = [
    "Backend",
    "Event",
    "Finalized",
    "ObjectRef",
    "ReconcileContext",
    "Reconciled",
]


@dataclass(frozen=True)
class ReconcileContext:
    """Everything one reconcile may read: the object as last seen, and the clock."""

    ref: ObjectRef
    spec: EmbeddingModelSpec
    status: EmbeddingModelStatus
    annotations: dict[str, str]
    now: datetime
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    deletion_started: datetime | None = None  # metadata.deletionTimestamp


class Backend(Protocol):
    """One per `spec.backend`; holds its clients, created once at operator start."""

    async def reconcile(self, ctx: ReconcileContext) -> Reconciled: ...

    async def finalize(self, ctx: ReconcileContext) -> Finalized: ...
