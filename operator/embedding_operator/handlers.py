"""kopf wiring only: settings, one reconcile loop per object, the finalizer.

Each EmbeddingModel gets one kopf daemon that loops `reconcile → wait`. The wait ends early when
the object's generation or annotations change (the daemon's body is kept current by kopf's
watch, so this is a look at memory, not an API call), otherwise after the interval the backend
asked for — which is how remote state (AI Core deployments,
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
from embedding_operator.api.spec import FINALIZER, GROUP, PLURAL, VERSION
from embedding_operator.backends.base import Event
from embedding_operator.kube import CRDMissing, check_crd_served
from embedding_operator.plan.embedding_space import CONFIRM_ANNOTATION
from embedding_operator.reconciler import Reconciler

RESOURCE = (GROUP, VERSION, PLURAL)
Logger = logging.Logger | logging.LoggerAdapter[Any]


# How often a waiting loop looks at the (watch-updated) body for a user change.
CHANGE_CHECK_SECONDS = 0.5


def user_state(body: Mapping[str, Any]) -> tuple[Any, ...]:
    """What the user controls: a change here cuts the wait short (our status writes do not)."""
    meta = body.get("metadata", {})
    annotations = meta.get("annotations") or {}
    # NB: kopf's own bookkeeping annotations (our prefix) change on every handler run; the
    # embedding-space confirmation is the one of ours a user writes.
    ours = tuple(
        sorted(
            (k, v)
            for k, v in annotations.items()
            if not k.startswith(f"{GROUP}/") or k == CONFIRM_ANNOTATION
        )
    )
    return (meta.get("generation"), ours, meta.get("deletionTimestamp"))


async def wait_for_change(body: Mapping[str, Any], seconds: float) -> None:
    """Sleep up to `seconds`, returning early when the user changes the object."""
    loop = asyncio.get_running_loop()
    before, deadline = user_state(body), loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        await asyncio.sleep(min(CHANGE_CHECK_SECONDS, left))
        if user_state(body) != before:
            return


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
    # list/watch of CRDs and namespaces, so none in RBAC (kopf retries those 403s with back-off,
    # about half a minute, before it starts watching).
    settings.scanning.disabled = True
    settings.execution.max_workers = 20
    # NB: `memo.metrics` is set by runner.run_operator unless --metrics-port is 0.
    memo.reconciler = await build_reconciler(post_event, metrics=memo.get("metrics"))
    try:
        await check_crd_served(memo.reconciler.kube, memo.get("namespaces") or [])
    except CRDMissing as error:
        raise kopf.PermanentError(str(error)) from None


@kopf.on.login()
def authenticate(settings: kopf.OperatorSettings, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """The same credentials as the operator's own client: in a pod, $KUBERNETES_SERVICE_HOST."""
    return login.connection(settings, **kwargs)


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    reconciler: Reconciler | None = memo.get("reconciler")
    if reconciler is not None:
        await reconciler.close()


@kopf.daemon(*RESOURCE, cancellation_timeout=10.0)
async def reconcile_loop(body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    reconciler: Reconciler = memo.reconciler
    failures = 0
    # NB: kopf runs each daemon as its own asyncio task, so this binding is this object's only.
    logs.bind(body)
    while True:
        # NB: the daemon's body is a live view, refreshed by every watch event.
        try:
            delay = await reconciler.reconcile(body, logger)
            failures = 0
        except Exception:  # e.g. the API server is briefly unreachable for the status write
            failures += 1
            delay = min(2.0**failures, reconciler.settings.intervals.retry_max)
            logger.exception("reconcile pass failed; retrying in %.0fs", delay)
        await wait_for_change(body, delay)


@kopf.on.delete(*RESOURCE)
async def finalize(body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    reconciler: Reconciler = memo.reconciler
    with logs.about(body):
        result = await reconciler.finalize(body, logger)
    if not result.done:
        raise kopf.TemporaryError(result.message, delay=result.retry_after)
