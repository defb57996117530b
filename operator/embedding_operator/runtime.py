"""Build the long-lived objects of a running operator: the Kubernetes client and the backends.

Separate from handlers.py so tests can build the same graph without kopf.
"""

from __future__ import annotations

from functools import partial

from embedding_operator.api.spec import Backend as BackendName
from embedding_operator.backends.base import Backend
from embedding_operator.kube import make_client
from embedding_operator.metrics import Metrics
from embedding_operator.reconciler import EventPoster, Reconciler
from embedding_operator.settings import Settings


async def build_reconciler(
    post_event: EventPoster, settings: Settings | None = None, metrics: Metrics | None = None
) -> Reconciler:
    from embedding_operator.aicore import AICoreClient
    from embedding_operator.backends.aicore import AICoreBackend
    from embedding_operator.backends.kserve import KServeBackend

    settings = settings or Settings()
    kube = make_client(settings.kubeconfig)
    # NB: every AI Core client the backend makes (one per service-key Secret) reports to metrics.
    aicore_clients = (
        partial(AICoreClient, on_response=metrics.aicore_response) if metrics else AICoreClient
    )
    backends: dict[str, Backend] = {
        BackendName.AICORE: AICoreBackend(kube, settings, client_factory=aicore_clients),
        BackendName.KSERVE: KServeBackend(kube, settings),
    }
    return Reconciler(kube, backends, settings, post_event, metrics=metrics)
