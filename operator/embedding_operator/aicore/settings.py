"""Tunables of the AI Core client (timeouts, retries, paging) and the pure back-off arithmetic.

Kept apart from the client so the operator's settings module can build these from the
environment, and so the delay rules are table-testable without any I/O.
"""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetrySettings:
    """When and how long the client waits before repeating a failed call."""

    max_attempts: int = 5
    """Attempts per call, the first included (a 401 token refresh does not count)."""
    initial_backoff: float = 0.5
    """Seconds before the second attempt when the server gave no ``Retry-After``."""
    backoff_factor: float = 2.0
    """Multiplier per further attempt (0.5 s, 1 s, 2 s, ...)."""
    max_backoff: float = 30.0
    """Upper bound in seconds of one computed back-off."""
    jitter: float = 0.1
    """Fraction (0..1) of random spread on computed back-offs, so replicas do not retry in step."""
    max_retry_after: float = 60.0
    """Longest ``Retry-After`` (seconds) honoured inline; a longer hint is raised to the caller
    (``error.retry_after``) so a reconcile loop can requeue instead of blocking."""
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    """Statuses retried for idempotent calls (and for POSTs whose ``find`` proves absence)."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetrySettings.max_attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetrySettings.jitter must be between 0 and 1")


@dataclass(frozen=True)
class ClientSettings:
    """Everything about the client's behaviour that is not a credential."""

    retry: RetrySettings = field(default_factory=RetrySettings)
    connect_timeout: float = 10.0
    """Seconds to establish a connection."""
    read_timeout: float = 60.0
    """Seconds to wait for a response (the official SDK also uses 60 s)."""
    pool_timeout: float | None = None
    """Seconds a request may wait for a free connection of this client (None: no limit).
    NB: waiting in our own queue says nothing about AI Core's health, so by default it is not
    a failure; the caller bounds the whole call instead (the operator's pass timeout)."""
    max_connections: int = 100
    """Concurrent connections to AI Core; further requests queue in this client."""
    page_size: int = 10_000
    """``$top`` for paged lists: AI Core's own default (its maximum is 100000).
    NB: with 1000, a tenant of 1000 deployments cost two requests per list (the second page
    empty) and 2000 three: the settled operator made 1.1-1.2 lists/s at a 2 s interval."""
    client_type: str = "embedding-operator"
    """Sent as ``AI-Client-Type`` (AI Core uses it for metering only)."""

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= 100_000:
            raise ValueError("ClientSettings.page_size must be between 1 and 100000")


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None.

    ``now`` is wall-clock epoch seconds, used only for the date form.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def backoff_delay(
    settings: RetrySettings,
    attempt: int,
    retry_after: float | None,
    rand: random.Random | None = None,
) -> float:
    """Seconds to sleep after failed attempt number ``attempt`` (1-based).

    The server's ``Retry-After`` wins when given (it knows when it will recover); otherwise
    exponential back-off with jitter.
    """
    if retry_after is not None:
        return retry_after
    base = min(
        settings.max_backoff, settings.initial_backoff * settings.backoff_factor ** (attempt - 1)
    )
    if settings.jitter:
        spread = base * settings.jitter
        base += (rand or random).uniform(-spread, spread)
    return max(0.0, base)
