"""The serving check's verdicts: one real embedding request decides what Ready means (pure).

A platform's own Ready (KServe's condition, AI Core's RUNNING) says a process is up; only an
embedding of the right size says the model serves. These functions turn one request's result into
the outcome and `status.serving`, and decide when the last result is still fresh enough to keep.
The request itself is I/O and lives in probe.py (one shared client for both backends and the CLI);
`embedding_size` is the one decoder of an embeddings response.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

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
    `dimensions` is the length of the returned vector; `error` says what went wrong otherwise;
    `transient` marks failures worth riding out (429/5xx, timeouts) rather than reporting at once.
    """

    reachable: bool
    dimensions: int | None = None
    error: str | None = None
    transient: bool = False


def embedding_size(embedding: Any) -> int:
    """Length of one embedding: a list of floats, or base64 little-endian float32.

    Raises ValueError for anything else (so every caller reports a bad answer the same way).
    """
    if isinstance(embedding, list):
        return len(embedding)
    if isinstance(embedding, str) and embedding:
        try:
            return len(base64.b64decode(embedding, validate=True)) // 4
        except (binascii.Error, ValueError):
            pass
    raise ValueError("the embedding is neither a list nor base64")


def first_embedding_size(response: Any) -> int:
    """Size of the first vector of an OpenAI-style embeddings response; ValueError if none."""
    data = response.get("data") if isinstance(response, Mapping) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], Mapping):
        raise ValueError("the answer has no 'data' list of embeddings")
    if "embedding" not in data[0]:
        raise ValueError("the answer's 'data' item has no 'embedding'")
    size = embedding_size(data[0]["embedding"])
    if size == 0:
        raise ValueError("the answer's embedding is empty")
    return size


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def check_due(
    previous: EmbeddingModelStatus,
    generation: int,
    now: datetime,
    interval: float | None,
    *,
    after_failure: float = 0.0,
) -> bool:
    """Whether to send a new check, or keep the last result (one request per `interval`).

    `interval=None` checks once per generation and readiness episode only: see `check_interval`.
    `after_failure` spaces checks that keep failing: see `check_wait`.
    """
    return check_wait(previous, generation, now, interval, after_failure=after_failure) <= 0


def check_wait(
    previous: EmbeddingModelStatus,
    generation: int,
    now: datetime,
    interval: float | None,
    *,
    after_failure: float = 0.0,
) -> float:
    """Seconds until the next check is due (0: now; inf: only after a change).

    With `after_failure` > 0, checks that keep failing are at least that many seconds apart,
    growing with how long the object has not been Ready (a quarter of it), up to `interval` (or
    10 min): a model that never serves is not asked every poll for ever.
    """
    serving = previous.serving
    last = _parse_time(serving.last_checked if serving else None)
    if serving is None or last is None:
        return 0.0
    age = (now - last).total_seconds()
    if serving.verified is False:
        if after_failure <= 0 or previous.observed_generation != generation:
            return 0.0
        ready = next((c for c in previous.conditions if c.type == "Ready"), None)
        since = _parse_time(ready.last_transition_time if ready else None) or last
        spacing = max(after_failure, (now - since).total_seconds() / 4)
        return max(0.0, min(spacing, interval or 600.0) - age)
    if previous.phase != Phase.READY or previous.observed_generation != generation:
        return 0.0
    if interval is None:
        return float("inf")
    return max(0.0, interval - age)


def check_interval(spec: EmbeddingModelSpec, seconds: float, key: str) -> float | None:
    """How often a Ready model is checked again: never on time alone when it may scale to zero.

    NB: with `replicas.min: 0` (Knative scale to zero) a periodic request would wake the model
    every time, so it is checked after each change and each return to Ready, not on a timer.

    Each object (`key`: anything stable and unique to it, e.g. its uid or a name made from it)
    gets its own fixed share of `seconds`, between three quarters and all of it: 100 objects
    that became Ready together had re-checked within the same 21 s every 10 minutes
    (bench/RESULTS.md); with their own periods they spread out (like client-go's jittered
    resync), and no object is checked less often than every `seconds`.
    """
    if spec.replicas.min <= 0:
        return None
    share = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return seconds * (0.75 + 0.25 * share)


Unreachable = Literal["skip", "fail"]


def judge_serving(
    spec: EmbeddingModelSpec,
    subject: str,
    check: CheckResult,
    now: datetime,
    *,
    unreachable: Unreachable = "skip",
) -> tuple[Outcome, ServingStatus]:
    """The final outcome for a server its platform calls Ready, given one serving check.

    `subject` names that server in messages, e.g. "InferenceService minilm". `unreachable` is the
    reachability policy: "skip" where the operator may legitimately not reach the server (a
    cluster-local KServe URL from outside the cluster), "fail" where it must (AI Core's gateway).
    """
    image, checked = image_of(spec), timestamp(now)
    if not check.reachable and unreachable == "skip":
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
