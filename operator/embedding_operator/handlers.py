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
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar, cast

import kopf

from embedding_operator import login, logs
from embedding_operator.api.spec import FINALIZER, GROUP, PLURAL, VERSION
from embedding_operator.backends.base import Event
from embedding_operator.kube import CRDMissing, check_crd_served
from embedding_operator.plan.embedding_space import CONFIRM_ANNOTATION
from embedding_operator.protection import SecretProtection, secret_of
from embedding_operator.reconciler import Reconciler
from embedding_operator.retry import describe, is_transient

RESOURCE = (GROUP, VERSION, PLURAL)
OPERATOR_EXITING = kopf.DaemonStoppingReason.OPERATOR_EXITING
T = TypeVar("T")
Logger = logging.Logger | logging.LoggerAdapter[Any]


# How often a waiting loop looks at the (watch-updated) body for a user change.
CHANGE_CHECK_SECONDS = 0.5
# Deletion and shutdown go through kopf's own daemon stopping: a pass in flight may finish for
# DAEMON_FINISH_SECONDS, then kopf cancels it and waits DAEMON_CANCEL_SECONDS for it to unwind.
# On shutdown the first loop told to stop cancels every pass at once (ActiveLoops.exit).
# NB: 5 + 5 s, one daemon after another, made 250 new objects outlast the 30 s grace period.
DAEMON_FINISH_SECONDS = 1.0
DAEMON_CANCEL_SECONDS = 2.0


class ActiveLoops:
    """The running reconcile loops: the operator's exit cancels every pass in flight at once,
    and clean-up closes the clients only after the last loop has left.

    NB: kopf stops daemons one after another, each after its own `cancellation_backoff`. With
    250 new objects, the passes not yet told kept creating remote objects while kopf walked the
    list (9 s on a busy node), which slowed the walk itself. Cancelling is safe: every pass
    finds before it creates, so the next leader resumes what a cancelled pass began.
    """

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.exiting = asyncio.Event()
        self._passes: set[asyncio.Future[Any]] = set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def wait_idle(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def exit(self) -> None:
        """The operator is exiting: cancel every pass in flight; loops then end."""
        if not self.exiting.is_set():
            self.exiting.set()
            for task in list(self._passes):
                task.cancel()

    async def watch(self, stopped: kopf.DaemonStopped) -> None:
        """One loop's stopper: the first one that says the operator exits stops every loop."""
        await stopped.wait()
        if stopped.reason is not None and OPERATOR_EXITING in stopped.reason:
            self.exit()

    async def run(self, work: Coroutine[Any, Any, T]) -> T | None:
        """Run one pass; None when the operator's exit cancelled it."""
        if self.exiting.is_set():
            work.close()
            return None
        task = asyncio.ensure_future(work)
        self._passes.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.exiting.is_set() and current is not None and not current.cancelling():
                return None  # the pass was cancelled, not this loop
            raise
        finally:
            self._passes.discard(task)


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


async def wait_for_change(
    body: Mapping[str, Any],
    seconds: float,
    stopped: Any = None,
    exiting: asyncio.Event | None = None,
) -> None:
    """Sleep up to `seconds`; return early when the user changes the object, its daemon is
    stopped (`stopped`: kopf's daemon flag, truthy once set) or the operator exits."""
    loop = asyncio.get_running_loop()
    before, deadline = user_state(body), loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        await asyncio.sleep(min(CHANGE_CHECK_SECONDS, left))
        if user_state(body) != before or stopped or (exiting is not None and exiting.is_set()):
            return


_events_log = logging.getLogger("embedding_operator.events")


def post_event(body: Mapping[str, Any], event: Event) -> None:
    # NB: Events are posted once per transition (report.transition_events), so this is the
    # operator's one log line per object per state change.
    level = logging.WARNING if event.type == "Warning" else logging.INFO
    with logs.about(body):
        _events_log.log(level, "%s: %s", event.reason, event.message.splitlines()[0][:500])
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
    # NB: no `settings.execution.max_workers` (was a hard-coded 20): that pool runs only sync
    # handlers, and ours is the login alone (once per connection). Every object's work is an
    # asyncio task (its daemon), which no pool size limits; kopf's default pool suffices.
    memo.loops = ActiveLoops()
    # NB: `memo.metrics` is set by runner.run_operator unless --metrics-port is 0.
    memo.reconciler = await build_reconciler(post_event, metrics=memo.get("metrics"))
    memo.protection = SecretProtection(memo.reconciler.kube)
    try:
        await check_crd_served(memo.reconciler.kube, memo.get("namespaces") or [])
    except CRDMissing as error:
        raise kopf.PermanentError(str(error)) from None


@kopf.on.login()
def authenticate(settings: kopf.OperatorSettings, **kwargs: Any) -> kopf.ConnectionInfo | None:
    """The same credentials as the operator's own client: in a pod, $KUBERNETES_SERVICE_HOST."""
    return login.connection(settings, **kwargs)


@kopf.on.cleanup()
async def close(memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    loops: ActiveLoops | None = memo.get("loops")
    if loops is not None and not await loops.wait_idle(DAEMON_CANCEL_SECONDS):
        logger.warning("%d reconcile loops still running at shutdown", loops.count)
    reconciler: Reconciler | None = memo.get("reconciler")
    if reconciler is not None:
        await reconciler.close()
    release_watch_pause_waiters()


def release_watch_pause_waiters() -> None:
    """Cancel the pause-waiter tasks of kopf's watch streams, which kopf leaves behind.

    NB: kopf 1.45 cancels its watcher between two events while it feeds a burst of new objects
    to their workers; the watch generator is then never closed, so the task it made to wait for
    a pause (peering; never needed here) lives on, and kopf's last step waits 5 s for such
    "hung" tasks before it cancels them itself. Found by the 250-model shutdown case.
    """
    for task in asyncio.all_tasks():
        if task.get_name().startswith("pause-waiter for ") and not task.done():
            task.cancel()


@kopf.daemon(
    *RESOURCE,
    cancellation_backoff=DAEMON_FINISH_SECONDS,
    cancellation_timeout=DAEMON_CANCEL_SECONDS,
)
async def reconcile_loop(
    body: kopf.Body, memo: kopf.Memo, logger: Logger, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    reconciler: Reconciler = memo.reconciler
    protection: SecretProtection = memo.protection
    loops: ActiveLoops = memo.loops
    failures = 0
    # NB: kopf runs each daemon as its own asyncio task, so this binding is this object's only.
    logs.bind(body)

    async def one_pass() -> float:
        # NB: before anything is created remotely with the key (protection.py).
        if (secret := secret_of(body)) and not body.metadata.deletion_timestamp:
            await protection.use(body.metadata.namespace or "", body.metadata.uid or "", secret)
        return await reconciler.reconcile(body, logger)

    loops.enter()
    watcher = asyncio.ensure_future(loops.watch(stopped))
    try:
        while not stopped and not loops.exiting.is_set():
            # NB: the daemon's body is a live view, refreshed by every watch event.
            try:
                done = await loops.run(one_pass())
                if done is None:
                    break  # the operator exits
                delay = done
                if failures:
                    logger.info("reconcile passes work again after %d failures", failures)
                failures = 0
            except Exception as error:  # e.g. the API server is unreachable for the status write
                failures += 1
                delay = min(2.0**failures, reconciler.settings.intervals.retry_max)
                log_failure(logger, error, failures, delay)
            await wait_for_change(body, delay, stopped, loops.exiting)
    finally:
        watcher.cancel()
        loops.leave()


def log_failure(logger: Logger, error: Exception, failures: int, delay: float) -> None:
    """An outage: one warning when it starts, then quiet. A bug: its traceback, once."""
    if is_transient(error):
        if failures == 1:
            logger.warning("reconcile pass failed (%s); retrying quietly", describe(error))
        else:
            logger.debug("reconcile pass failed again (%s); next in %.0fs", describe(error), delay)
    elif failures == 1:
        logger.exception("reconcile pass failed unexpectedly; retrying in %.0fs", delay)
    else:
        logger.warning("reconcile pass failed again (%s); next in %.0fs", describe(error), delay)


@kopf.on.delete(*RESOURCE)
async def finalize(body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    reconciler: Reconciler = memo.reconciler
    with logs.about(body):
        result = await reconciler.finalize(body, logger)
    if not result.done:
        raise kopf.TemporaryError(result.message, delay=result.retry_after)
    if secret := secret_of(body):
        protection: SecretProtection = memo.protection
        await protection.release(body.metadata.namespace or "", secret, body.metadata.uid or "")
