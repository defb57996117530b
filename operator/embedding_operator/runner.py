"""Run the operator: logging and metrics set-up, then kopf's own run loop with our handlers."""

from __future__ import annotations

import logging

import kopf
from prometheus_client import REGISTRY

from embedding_operator import logs
from embedding_operator.metrics import Metrics, serve


def run_operator(
    *,
    namespaces: list[str] | None,
    liveness: str,
    verbose: bool,
    metrics_port: int = 0,
    log_format: str = logs.TEXT,
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
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces or [],
        liveness_endpoint=liveness,
        standalone=True,
        memo=memo,
    )
