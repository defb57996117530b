"""Operator settings, read once from the environment at start-up.

Every knob is an environment variable so the same image serves the cluster-wide and the
one-namespace install, and tests can shorten intervals without code changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds, got {raw!r}") from None


def _int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Intervals:
    """How often the operator looks again, in seconds."""

    pending: float = field(default_factory=lambda: _float("EMB_POLL_PENDING_SECONDS", 5.0))
    """While a remote deployment starts (UNKNOWN/PENDING, rollout). Default 5 s."""

    ready: float = field(default_factory=lambda: _float("EMB_POLL_READY_SECONDS", 60.0))
    """Drift check once Ready: a deployment deleted or stopped behind our back is seen within
    this time. Default 60 s."""

    stalled: float = field(default_factory=lambda: _float("EMB_POLL_STALLED_SECONDS", 30.0))
    """Re-check of a Stalled object (e.g. re-read a missing Secret by name, so recovery needs no
    watch on all Secrets). Default 30 s."""

    retry_max: float = field(default_factory=lambda: _float("EMB_RETRY_MAX_SECONDS", 60.0))
    """Upper bound of the back-off after transient errors. Default 60 s."""


@dataclass(frozen=True)
class Settings:
    intervals: Intervals = field(default_factory=Intervals)
    serving_check_timeout: float = field(
        default_factory=lambda: _float("EMB_SERVING_CHECK_TIMEOUT_SECONDS", 30.0)
    )
    """Timeout of the one embedding request that proves a deployment serves. Default 30 s."""

    ready_grace: float = field(default_factory=lambda: _float("EMB_READY_GRACE_SECONDS", 120.0))
    """How long a Ready object stays Ready through transient failures (AI Core 5xx/429, a
    failed serving check that may pass again), saying so in its message. Default 120 s."""

    pass_timeout: float = field(default_factory=lambda: _float("EMB_PASS_TIMEOUT_SECONDS", 90.0))
    """Upper bound of one AI Core pass, so a frozen AI Core never blocks an object's loop.
    Default 90 s."""

    deletion_deadline: float = field(
        default_factory=lambda: _float("EMB_DELETION_DEADLINE_SECONDS", 300.0)
    )
    """How long a deletion may wait for an AI Core that does not answer before it is reported
    Stalled (the finalizer stays and retries go on). Default 300 s."""

    aicore_max_connections: int = field(
        default_factory=lambda: _int("EMB_AICORE_MAX_CONNECTIONS", 20)
    )
    """Concurrent requests to one AI Core tenant (service key); more wait in the operator, so a
    burst of hundreds of new objects neither times out against a slow AI Core nor hits its rate
    limit all at once. Default 20."""

    kubeconfig: str | None = field(default_factory=lambda: os.environ.get("KUBECONFIG") or None)
    """Kubeconfig for the operator's own writes; in-cluster ServiceAccount when unset."""
