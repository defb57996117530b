"""The serving check's verdicts: one real embedding request decides what Ready means (pure).

A platform's own Ready (KServe's condition, AI Core's RUNNING) says a process is up; only an
embedding of the right size says the model serves. These functions turn one request's result into
the outcome and `status.serving`, and decide when the last result is still fresh enough to keep.
The request itself is I/O and lives with the backend (backends/kserve.py `http_checker`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from embedding_operator.api.conditions import Outcome, Reason, timestamp
from embedding_operator.api.spec import EmbeddingModelSpec
from embedding_operator.api.status import EmbeddingModelStatus, Phase, ServingStatus
from embedding_operator.serving import image_of

_MAX_DETAIL = 1000


@dataclass(frozen=True)
class CheckResult:
    """One embedding request against the server.

    `reachable` is False when no connection could be made at all (a cluster-local name the
    operator cannot resolve, a network policy): the check is then skipped, not failed.
    `dimensions` is the length of the returned vector; `error` says what went wrong otherwise.
    """

    reachable: bool
    dimensions: int | None = None
    error: str | None = None


def check_due(
    previous: EmbeddingModelStatus, generation: int, now: datetime, interval: float | None
) -> bool:
    """Whether to send a new check, or keep the last result (one request per `interval`).

    `interval=None` checks once per generation and readiness episode only: see `check_interval`.
    """
    serving = previous.serving
    if serving is None or serving.last_checked is None or serving.verified is False:
        return True
    if previous.phase != Phase.READY or previous.observed_generation != generation:
        return True
    if interval is None:
        return False
    try:
        last = datetime.fromisoformat(serving.last_checked.replace("Z", "+00:00"))
    except ValueError:
        return True
    return (now - last).total_seconds() >= interval


def check_interval(spec: EmbeddingModelSpec, seconds: float) -> float | None:
    """How often a Ready model is checked again: never on time alone when it may scale to zero.

    NB: with `replicas.min: 0` (Knative scale to zero) a periodic request would wake the model
    every time, so it is checked after each change and each return to Ready, not on a timer.
    """
    return seconds if spec.replicas.min > 0 else None


def judge_serving(
    spec: EmbeddingModelSpec, subject: str, check: CheckResult, now: datetime
) -> tuple[Outcome, ServingStatus]:
    """The final outcome for a server its platform calls Ready, given one serving check.

    `subject` names that server in messages, e.g. "InferenceService minilm".
    """
    image, checked = image_of(spec), timestamp(now)
    if not check.reachable:
        why = check.error or "the endpoint is not reachable from the operator"
        return (
            Outcome.ready(
                Reason.SERVING_CHECK_SKIPPED,
                f"{subject} is Ready; serving check skipped: {why}",
            ),
            ServingStatus(
                image=image, verified=None, message=f"skipped: {why}", last_checked=checked
            ),
        )
    if check.error is not None or check.dimensions is None:
        why = check.error or "the response carried no embedding"
        return (
            Outcome.progressing(
                Reason.SERVING_CHECK_FAILED,
                f"{subject} is Ready but the embedding request failed: {why}",
            ),
            ServingStatus(image=image, verified=False, message=_cut(why), last_checked=checked),
        )
    expected = spec.model.dimensions
    if expected is not None and expected != check.dimensions:
        why = (
            f"the server returns {check.dimensions}-dimensional embeddings but "
            f"spec.model.dimensions is {expected}: fix spec.model.dimensions or spec.model.uri"
        )
        return (
            Outcome.stalled(Reason.DIMENSION_MISMATCH, why),
            ServingStatus(
                image=image,
                dimensions=check.dimensions,
                verified=False,
                message=why,
                last_checked=checked,
            ),
        )
    return (
        Outcome.ready(
            Reason.SERVING_VERIFIED,
            f"{subject} is Ready and served a {check.dimensions}-dimensional embedding",
        ),
        ServingStatus(
            image=image, dimensions=check.dimensions, verified=True, last_checked=checked
        ),
    )


def reuse_serving(subject: str, serving: ServingStatus) -> Outcome:
    """The outcome for a Ready server whose last check is still fresh."""
    if serving.verified:
        return Outcome.ready(
            Reason.SERVING_VERIFIED,
            f"{subject} is Ready and served a {serving.dimensions}-dimensional embedding",
        )
    why = (serving.message or "skipped").removeprefix("skipped: ")
    return Outcome.ready(
        Reason.SERVING_CHECK_SKIPPED,
        f"{subject} is Ready; serving check skipped: {why}",
    )


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
