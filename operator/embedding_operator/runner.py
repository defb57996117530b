"""Run the operator: logging and metrics set-up, leader election, then kopf with our handlers.

With leader election on (the default), the process first waits as a standby until it holds the
Lease (leader.py) — answering its liveness probe meanwhile, so Kubernetes keeps it — and only
then starts kopf, so a standby never watches or writes. Leadership lost means exit(1): the pod
restarts clean, as a standby. On SIGTERM kopf stops its handlers first; the Lease is released
last, so the next leader starts only after this one has stopped acting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, NoReturn
from urllib.parse import urlparse

import kopf
from aiohttp import web
from prometheus_client import REGISTRY

from embedding_operator import logs
from embedding_operator.metrics import Metrics, serve

log = logging.getLogger(__name__)

# NB: a pod's default grace period is 30 s; kopf's own last resort (SIGKILL itself) is 10 min.
# Shutdown normally takes a few seconds (handlers.py); this bounds it below the grace period.
ULTIMATE_EXIT_SECONDS = 25.0


def run_operator(
    *,
    namespaces: list[str] | None,
    liveness: str,
    verbose: bool,
    metrics_port: int = 0,
    log_format: str = logs.TEXT,
    leader_election: bool = True,
    lease_namespace: str | None = None,
) -> None:
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.FULL, log_prefix=True)
    logs.install(logging.getLogger().handlers[-1], log_format=log_format)  # kopf's, just added
    import embedding_operator.handlers  # noqa: F401 - registers the kopf handlers

    memo = kopf.Memo()
    memo.namespaces = namespaces or []
    if not 0 <= metrics_port <= 65535:
        raise SystemExit(f"--metrics-port must be 0 (off) or a port 1..65535, got {metrics_port}")
    if metrics_port:
        # NB: the default registry also carries the process and Python GC collectors.
        memo.metrics = Metrics(REGISTRY)
        try:
            serve(memo.metrics, metrics_port)
        except OSError as error:
            raise SystemExit(
                f"cannot serve metrics on port {metrics_port}: {error.strerror}; choose another "
                "--metrics-port, or 0 to turn metrics off"
            ) from None
    settings = kopf.OperatorSettings()
    settings.process.ultimate_exiting_timeout = ULTIMATE_EXIT_SECONDS
    from embedding_operator.leader import default_identity

    # NB: kopf's peering.Identity is a NewType of str that kopf does not export.
    identity: Any = default_identity()
    operator = functools.partial(
        kopf.operator,
        clusterwide=not namespaces,
        namespaces=namespaces or [],
        liveness_endpoint=liveness,
        standalone=True,
        # NB: else kopf derives one from getpass.getuser(), which raises KeyError in a pod whose
        # uid has no passwd entry (the Deployment's 65532; any uid OpenShift assigns).
        identity=identity,
        settings=settings,
        memo=memo,
    )
    if not leader_election:
        with contextlib.suppress(asyncio.CancelledError):
            asyncio.run(operator())
        return
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(_lead_then_operate(operator, namespaces or [], liveness, lease_namespace))


async def _lead_then_operate(
    operator: Callable[[], Coroutine[Any, Any, None]],
    namespaces: list[str],
    liveness: str,
    lease_namespace: str | None,
) -> None:
    from embedding_operator.kube import make_client
    from embedding_operator.leader import (
        LeaderElection,
        RenewerThread,
        default_identity,
        default_namespace,
    )
    from embedding_operator.settings import Settings

    kubeconfig = Settings().kubeconfig
    namespace = lease_namespace or default_namespace(namespaces)
    identity = default_identity()
    kube = make_client(kubeconfig)
    election = LeaderElection(kube, namespace, identity)
    try:
        async with _standby(liveness):
            await election.acquire()
        renewer = RenewerThread(
            lambda: LeaderElection(make_client(kubeconfig), namespace, identity), _exit_on_loss
        )
        renewer.start()
        try:
            await operator()
        finally:
            await asyncio.to_thread(renewer.stop)
            await election.release()
    finally:
        await kube.close()


def _exit_on_loss(reason: str) -> None:
    """Another replica may be acting now: stop at once, without running any more handlers."""
    log.error("%s; exiting so the pod restarts as a standby", reason)
    exit_now(1)


def exit_now(code: int) -> NoReturn:
    """Flush the logs and end the process without the interpreter's teardown.

    NB: after a clean stop (kopf's cleanup ran, the Lease is released) nothing is left to
    write, but tearing down the heap of a process that served hundreds of objects took 1-3 s of
    the grace period on a busy node (measured: exit 0.1 s after the last line with this, 3 s
    without).
    """
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextlib.asynccontextmanager
async def _standby(liveness: str) -> AsyncIterator[None]:
    """While waiting for the Lease: answer the liveness probe, and stop promptly on SIGTERM."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, task.cancel if task else lambda: None)
    runner: web.AppRunner | None = None
    if liveness:
        url = urlparse(liveness)

        async def healthz(_: web.Request) -> web.Response:
            return web.json_response({"leader": False})

        app = web.Application()
        app.router.add_get(url.path or "/", healthz)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, url.hostname, url.port or 80, reuse_address=True).start()
    try:
        yield
    finally:
        if runner is not None:
            await runner.cleanup()  # NB: frees the port for kopf's own liveness endpoint
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
