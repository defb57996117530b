"""Run the operator: logging set-up, then kopf's own run loop with our handlers registered."""

from __future__ import annotations

import logging

import kopf


def run_operator(*, namespaces: list[str] | None, liveness: str, verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # NB: httpx logs every request URL at INFO; URLs carry no secrets, but the noise hides ours.
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import embedding_operator.handlers  # noqa: F401 - registers the kopf handlers

    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces or [],
        liveness_endpoint=liveness,
        standalone=True,
    )
