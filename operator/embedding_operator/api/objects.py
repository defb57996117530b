"""Plain values about one EmbeddingModel that every layer passes around: its identity and Events.

They sit in the API layer, below the plan, so the pure planners can name the object and say what
to announce without importing the shell's backend contract (backends/base.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from embedding_operator.api.spec import GROUP, KIND, VERSION


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
    """A Kubernetes Event to post on the EmbeddingModel (the reconciler redacts `message`)."""

    type: str  # "Normal" or "Warning"
    reason: str
    message: str

    @classmethod
    def normal(cls, reason: str, message: str) -> Event:
        return cls("Normal", reason, message)

    @classmethod
    def warning(cls, reason: str, message: str) -> Event:
        return cls("Warning", reason, message)
