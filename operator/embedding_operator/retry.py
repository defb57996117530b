"""One retry and idempotency policy: any error of a pass → the outcome to show, when to retry.

Both backends and the reconcile shell call `classify`; nobody else decides whether an error is
the user's to fix (Stalled), a remote object that vanished (back to find-or-create), a state
conflict (look again soon), or an outage (retry, honouring the server's Retry-After). The client
below already retried inline within its short budget (aicore/settings.py); what reaches here
outlived those retries.

A Ready object stays Ready through transient verdicts for a bounded window (plan.aicore
`hold_ready`): one 503 from AI Core does not mean the model stopped serving.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from embedding_operator.aicore.errors import (
    AICoreError,
    AICoreRequestError,
    AICoreResponseError,
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    ServiceKeyError,
    Unauthorized,
)
from embedding_operator.api.conditions import Outcome, Reason, timestamp
from embedding_operator.kube import KubeError, SecretProblem, kube_error
from embedding_operator.settings import Intervals

#: AI Core's code (and the emulator's) for a request naming an unknown resource group.
RESOURCE_GROUP_CODES = {"InvalidResourceGroup", "ResourceGroupNotFound"}


@dataclass(frozen=True)
class Verdict:
    """What one failed pass means.

    `transient`: retrying without any change can succeed (a Ready object may stay Ready).
    `gone`: the call named a remote object AI Core no longer knows; the caller drops the IDs it
    recorded and finds-or-creates again.
    """

    outcome: Outcome
    delay: float
    transient: bool = False
    gone: bool = False


_UNKNOWN_GROUP = re.compile(r"(?i)resource group\s+'?[\w.-]*'?\s+(does not exist|not found)")


def _vanished(error: InvalidRequest | NotFound) -> bool:
    text = (error.message or "").lower()
    if isinstance(error, NotFound):
        return True
    return "does not exist" in text and not _UNKNOWN_GROUP.search(text)


def classify(
    error: BaseException, intervals: Intervals, now: datetime, *, failures: int = 1
) -> Verdict:
    """The outcome and retry delay for `error`; `failures` counts consecutive failed passes."""
    backoff = min(2.0**failures, intervals.retry_max)
    if isinstance(error, SecretProblem):
        return Verdict(Outcome.stalled(error.reason, error.message), intervals.stalled)
    if isinstance(error, ServiceKeyError):
        return Verdict(
            Outcome.stalled(Reason.SERVICE_KEY_INVALID, f"the service key is unusable: {error}"),
            intervals.stalled,
        )
    if isinstance(error, Unauthorized):
        return Verdict(
            Outcome.stalled(
                Reason.AUTHENTICATION_FAILED,
                f"AI Core rejected the credentials ({error}): check clientid/clientsecret/url "
                "of the service key or rotate it",
            ),
            intervals.stalled,
        )
    if isinstance(error, InvalidRequest) and (
        error.code in RESOURCE_GROUP_CODES or _UNKNOWN_GROUP.search(error.message or "")
    ):
        return Verdict(
            Outcome.stalled(
                Reason.RESOURCE_GROUP_NOT_FOUND,
                f"AI Core does not know the resource group: {error.message}; fix "
                "spec.aicore.resourceGroup or create the group",
            ),
            intervals.stalled,
        )
    if isinstance(error, NotFound | InvalidRequest) and _vanished(error):
        return Verdict(
            Outcome.progressing(
                Reason.CREATING, f"an AI Core object the operator recorded is gone: {error}"
            ),
            0.0,
            transient=True,
            gone=True,
        )
    if isinstance(error, InvalidRequest):
        return Verdict(
            Outcome.stalled(Reason.AICORE_REJECTED, f"AI Core rejected a request: {error}"),
            intervals.stalled,
        )
    if isinstance(error, Conflict):
        return Verdict(
            Outcome.progressing(
                Reason.AICORE_CONFLICT,
                f"AI Core refused the change in the deployment's current state; looking again: "
                f"{error}",
            ),
            intervals.pending,
            transient=True,
        )
    if isinstance(error, RateLimited):
        wait = max(error.retry_after or backoff, intervals.pending)
        until = timestamp(now + timedelta(seconds=wait))
        return Verdict(
            Outcome.progressing(Reason.AICORE_UNAVAILABLE, f"rate-limited until {until}: {error}"),
            wait,
            transient=True,
        )
    if isinstance(error, ServerError | AICoreRequestError | AICoreResponseError | TimeoutError):
        wait = max(getattr(error, "retry_after", None) or backoff, intervals.pending)
        text = str(error) or "no answer within the timeout"
        return Verdict(
            Outcome.progressing(Reason.AICORE_UNAVAILABLE, f"retrying: {text}"),
            wait,
            transient=True,
        )
    if isinstance(error, AICoreError):
        return Verdict(
            Outcome.progressing(Reason.AICORE_UNAVAILABLE, f"retrying: {error}"),
            max(backoff, intervals.pending),
            transient=True,
        )
    if isinstance(error, httpx.TransportError | ConnectionError | asyncio.TimeoutError):
        # NB: a raw connection failure outside the AI Core client (a serving URL, a socket).
        return Verdict(
            Outcome.progressing(Reason.INTERNAL_ERROR, f"retrying: {describe(error)}"),
            backoff,
            transient=True,
        )
    kube: KubeError | None = kube_error(error)
    if kube is not None:
        return Verdict(
            Outcome.progressing(
                Reason.INTERNAL_ERROR, f"Kubernetes API: HTTP {kube.code}: {kube.message}"
            ),
            backoff,
            transient=kube.transient,
        )
    return Verdict(
        Outcome.progressing(Reason.INTERNAL_ERROR, f"{type(error).__name__}: {error}"), backoff
    )


def is_transient(error: BaseException) -> bool:
    """`classify`'s word on whether retrying alone can succeed, for callers that only decide how
    loudly to log (an outage: one line; a bug: its traceback)."""
    return classify(error, Intervals(), datetime.now(UTC)).transient


def describe(error: BaseException) -> str:
    """One line, e.g. 'ConnectError: [Errno 111] Connection refused'."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
