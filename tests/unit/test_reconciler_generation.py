"""Status carries the generation of the spec a pass read, not the one the object has when it ends.

kopf keeps a daemon's body current, so a new commit can land while a pass over the previous spec
still awaits AI Core. Stamping that pass's Ready with the new generation made a real Argo CD show
a broken commit as Healthy for seconds (tests/integration/test_gitops.py, scenario 4).
"""

from __future__ import annotations

import logging
from typing import Any

from embedding_operator.api.conditions import Outcome, Reason
from embedding_operator.backends.base import Finalized, ReconcileContext, Reconciled
from embedding_operator.reconciler import Reconciler
from embedding_operator.settings import Settings

LOG = logging.getLogger("test")


class RecordingKube:
    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch(self, resource: Any, name: str, obj: dict[str, Any], **_: Any) -> None:
        self.patches.append(obj)


class SpecChangesMidPass:
    """Reports Ready for the spec it was given, after the user committed a new one."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.seen: list[int] = []

    async def reconcile(self, ctx: ReconcileContext) -> Reconciled:
        self.seen.append(ctx.ref.generation)
        self.body["metadata"]["generation"] += 1  # what kopf does to the live body
        return Reconciled(Outcome.ready(Reason.SERVING_VERIFIED, "ok"), requeue_after=60)

    async def finalize(self, ctx: ReconcileContext) -> Finalized:
        return Finalized(done=True, message="gone")


async def test_a_pass_is_stamped_with_the_generation_it_read() -> None:
    body: dict[str, Any] = {
        "apiVersion": "embeddings.ai/v1alpha1",
        "kind": "EmbeddingModel",
        "metadata": {"name": "m", "namespace": "ns", "uid": "uid-1", "generation": 2},
        "spec": {
            "backend": "kserve",
            "model": {"name": "minilm", "uri": "hf://sentence-transformers/all-MiniLM-L6-v2"},
        },
    }
    kube, backend = RecordingKube(), SpecChangesMidPass(body)
    reconciler = Reconciler(
        kube,  # type: ignore[arg-type]
        {"kserve": backend, "aicore": backend},
        Settings(),
        post_event=lambda body, event: None,
    )
    await reconciler.reconcile(body, LOG)
    assert backend.seen == [2] and body["metadata"]["generation"] == 3
    (patch,) = kube.patches
    status = patch["status"]
    assert status["observedGeneration"] == 2
    assert {c["type"]: c["observedGeneration"] for c in status["conditions"]}["Ready"] == 2
