"""kopf wiring only: settings, one reconcile loop per object, the finalizer.

Each EmbeddingModel gets one kopf daemon that loops `reconcile → wait`. The wait ends early when
the object's generation or annotations change (a watch event pokes it), otherwise after the
interval the backend asked for — which is how remote state (AI Core deployments,
InferenceService status, referenced Secrets) is polled without watching it. One loop per object
means one status writer and no handler/timer races. kopf's own bookkeeping goes to annotations
under our group, never to status or spec, and its log lines are not posted as Events (we post
our own, one per transition).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf

from embedding_operator import login, logs
from embedding_operator.api.spec import GROUP, PLURAL, VERSION
from embedding_operator.backends.base import Event
from embedding_operator.reconciler import Reconciler

FINALIZER = f"{GROUP}/finalizer"
RESOURCE = (GROUP, VERSION, PLURAL)
Logger = logging.Logger | logging.LoggerAdapter[Any]


class Wakeups:
    """Per-object events that cut a reconcile loop's wait short."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._seen: dict[str, tuple[Any, ...]] = {}

    def event(self, uid: str) -> asyncio.Event:
        return self._events.setdefault(uid, asyncio.Event())

    def observe(self, uid: str, body: Mapping[str, Any]) -> None:
        """Poke the loop when what the user controls changed (not on our own status writes)."""
        meta = body.get("metadata", {})
        key = (meta.get("generation"), tuple(sorted((meta.get("annotations") or {}).items())))
        if self._seen.get(uid) != key:
            self._seen[uid] = key
            self.event(uid).set()

    def forget(self, uid: str) -> None:
        self._events.pop(uid, None)
        self._seen.pop(uid, None)


def post_event(body: Mapping[str, Any], event: Event) -> None:
    kopf.event(cast(kopf.Body, body), type=event.type, reason=event.reason, message=event.message)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    from embedding_operator.runtime import build_reconciler

    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own Events only, plus kopf's errors
    settings.peering.standalone = True  # one replica (Recreate); no peering objects or RBAC
    # Serve exactly our CRD (found at start-up) in exactly the namespaces given: no cluster-wide
    # list/watch of CRDs and namespaces, so none in RBAC (kopf retries those 403s for a minute
    # before it starts watching).
    settings.scanning.disabled = True
    settings.execution.max_workers = 20
    # NB: `memo.metrics` is set by runner.run_operator unless --metrics-port is 0.
    memo.reconciler = await build_reconciler(post_event, metrics=memo.get("metrics"))
    memo.wakeups = Wakeups()


@kopf.on.login()
def authenticate(settings: kopf.OperatorSettings, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """The same credentials as the operator's own client: in a pod, $KUBERNETES_SERVICE_HOST."""
    return login.connection(settings, **kwargs)


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    reconciler: Reconciler | None = memo.get("reconciler")
    if reconciler is not None:
        await reconciler.close()


@kopf.on.event(*RESOURCE)
async def poke(body: kopf.Body, uid: str, memo: kopf.Memo, **_: Any) -> None:
    memo.wakeups.observe(uid, body)


@kopf.daemon(*RESOURCE, cancellation_timeout=10.0)
async def reconcile_loop(
    body: kopf.Body, uid: str, memo: kopf.Memo, logger: Logger, **_: Any
) -> None:
    reconciler: Reconciler = memo.reconciler
    wakeup = memo.wakeups.event(uid)
    failures = 0
    # NB: kopf runs each daemon as its own asyncio task, so this binding is this object's only.
    logs.bind(body)
    try:
        while True:
            wakeup.clear()
            # NB: the daemon's body is a live view, refreshed by every watch event.
            try:
                delay = await reconciler.reconcile(body, logger)
                failures = 0
            except Exception:  # e.g. the API server is briefly unreachable for the status write
                failures += 1
                delay = min(2.0**failures, reconciler.settings.intervals.retry_max)
                logger.exception("reconcile pass failed; retrying in %.0fs", delay)
            try:
                await asyncio.wait_for(wakeup.wait(), timeout=delay)
            except TimeoutError:
                pass
    finally:
        memo.wakeups.forget(uid)


@kopf.on.delete(*RESOURCE)
async def finalize(body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    reconciler: Reconciler = memo.reconciler
    with logs.about(body):
        result = await reconciler.finalize(body, logger)
    if not result.done:
        raise kopf.TemporaryError(result.message, delay=result.retry_after)
