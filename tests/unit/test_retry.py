"""The one retry policy: every error a pass can end in → outcome, delay, transient, gone (table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import httpx2
import pytest
from lightkube import ApiError

from embedding_operator.aicore.errors import (
    AICoreRequestError,
    ErrorBody,
    ServiceKeyError,
    status_error,
)
from embedding_operator.api.conditions import Outcome, Reason, conditions_for
from embedding_operator.api.status import EmbeddingModelStatus, Phase
from embedding_operator.kube import KubeError, SecretProblem, kube_error
from embedding_operator.plan.aicore import hold_ready
from embedding_operator.retry import classify
from embedding_operator.settings import Intervals

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
INTERVALS = Intervals(pending=5, ready=60, stalled=30, retry_max=60)


def aicore(status: int, message: str = "boom", code: str | None = None, **headers: str):
    body = {"error": {"code": code or str(status), "message": message}}
    response = httpx.Response(status, json=body, headers=headers)
    retry_after = float(headers["Retry-After"]) if "Retry-After" in headers else None
    return status_error("POST", "/v2/lm/deployments", response, retry_after=retry_after)


CASES = [
    # id, error, state, reason, delay, transient, gone
    (
        "secret-forbidden",
        SecretProblem(Reason.SECRET_FORBIDDEN, "may not read"),
        "stalled",
        Reason.SECRET_FORBIDDEN,
        30,
        False,
        False,
    ),
    ("bad-key", ServiceKeyError("no url"), "stalled", Reason.SERVICE_KEY_INVALID, 30, False, False),
    ("401", aicore(401), "stalled", Reason.AUTHENTICATION_FAILED, 30, False, False),
    ("400", aicore(400, "bad ttl"), "stalled", Reason.AICORE_REJECTED, 30, False, False),
    (
        "unknown-rg",
        aicore(400, "Resource group 'x' does not exist", code="InvalidResourceGroup"),
        "stalled",
        Reason.RESOURCE_GROUP_NOT_FOUND,
        30,
        False,
        False,
    ),
    (
        "configuration-vanished",
        aicore(400, "Deployment: configuration c1 does not exist in resource group default"),
        "progressing",
        Reason.CREATING,
        0,
        True,
        True,
    ),
    ("404", aicore(404), "progressing", Reason.CREATING, 0, True, True),
    (
        "state-conflict",
        aicore(400, "cannot be changed", code="01010076"),
        "progressing",
        Reason.AICORE_CONFLICT,
        5,
        True,
        False,
    ),
    ("503", aicore(503), "progressing", Reason.AICORE_UNAVAILABLE, 5, True, False),
    (
        "long-retry-after",
        aicore(429, **{"Retry-After": "300"}),
        "progressing",
        Reason.AICORE_UNAVAILABLE,
        300,
        True,
        False,
    ),
    (
        "timeout",
        AICoreRequestError("GET", "/x", "ReadTimeout"),
        "progressing",
        Reason.AICORE_UNAVAILABLE,
        5,
        True,
        False,
    ),
    (
        "kube-503",
        KubeError(503, "etcd"),
        "progressing",
        Reason.INTERNAL_ERROR,
        2,
        True,
        False,
    ),
    ("bug", KeyError("x"), "progressing", Reason.INTERNAL_ERROR, 2, False, False),
]


@pytest.mark.parametrize(
    "error,state,reason,delay,transient,gone", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_classify(error, state, reason, delay, transient, gone):
    verdict = classify(error, INTERVALS, NOW)
    assert (verdict.outcome.state, verdict.outcome.reason) == (state, reason), verdict
    assert (verdict.delay, verdict.transient, verdict.gone) == (delay, transient, gone)


def test_rate_limit_says_until_when():
    verdict = classify(aicore(429, **{"Retry-After": "300"}), INTERVALS, NOW)
    assert "rate-limited until 2026-12-01T10:05:00Z" in verdict.outcome.message


def test_a_conflict_is_not_an_outage():
    body = ErrorBody(code="01010076", message="Current status UNKNOWN cannot be changed")
    assert (
        "current state"
        in classify(
            status_error("PATCH", "/d", httpx.Response(412, json={"error": body.__dict__})),
            INTERVALS,
            NOW,
        ).outcome.message
    )


REQUEST = httpx2.Request("GET", "https://127.0.0.1:6443/api/v1/namespaces/ns/secrets/s")


@pytest.mark.parametrize(
    "raw,code",
    [
        (
            ApiError(
                request=REQUEST,
                response=httpx2.Response(
                    403,
                    json={"kind": "Status", "code": 403, "message": "forbidden"},
                    request=REQUEST,
                ),
            ),
            403,
        ),
        (
            httpx2.HTTPStatusError(
                "x", request=REQUEST, response=httpx2.Response(404, text="404", request=REQUEST)
            ),
            404,
        ),
        (httpx2.ConnectError("refused", request=REQUEST), None),
    ],
    ids=["api-error", "plain-text", "no-answer"],
)
def test_one_kubernetes_error_mapping(raw, code):
    error = kube_error(raw)
    assert error is not None and error.code == code
    assert error.transient == (code is None)
    assert kube_error(ValueError("x")) is None


def ready_status() -> EmbeddingModelStatus:
    outcome = Outcome.ready(Reason.SERVING_VERIFIED, "deployment d1 serves 384-dimensional")
    return EmbeddingModelStatus(
        phase=Phase.READY,
        observed_generation=1,
        conditions=conditions_for(outcome, [], generation=1, now=NOW - timedelta(hours=1)),
    )


def test_ready_rides_out_a_transient_failure_within_the_window_and_says_so():
    failed = Outcome.progressing(Reason.AICORE_UNAVAILABLE, "retrying: HTTP 503")
    held = hold_ready(ready_status(), failed, NOW - timedelta(seconds=30), NOW, 120)
    assert (held.state, held.reason) == ("ready", Reason.SERVING_VERIFIED)
    assert "still Ready" in held.message and "HTTP 503" in held.message
    assert hold_ready(ready_status(), failed, NOW - timedelta(seconds=121), NOW, 120) == failed
    not_ready = EmbeddingModelStatus(phase=Phase.PROGRESSING)
    assert hold_ready(not_ready, failed, NOW, NOW, 120) == failed
