"""Error-body parsing (every variant AI Core, XSUAA and gateways send), mapping and redaction."""

from __future__ import annotations

import json

import httpx
import pytest

from embedding_operator.aicore import (
    AICoreStatusError,
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
)
from embedding_operator.aicore.errors import ErrorBody, parse_error_body, status_error
from embedding_operator.aicore.settings import RetrySettings, backoff_delay, parse_retry_after

BODY_CASES = [
    (
        '{"error": {"code": "01010076", "message": "Invalid Request, Current status UNKNOWN '
        'cannot be changed..", "requestId": "e110820e", "target": "/v2/lm/deployments/d4f", '
        '"details": {}}}',
        ErrorBody(
            "01010076",
            "Invalid Request, Current status UNKNOWN cannot be changed..",
            "e110820e",
            "/v2/lm/deployments/d4f",
        ),
    ),
    (
        '{"error": {"code": "500", "message": "Internal", "request_id": null, '
        '"details": [{"code": null, "message": "repo failed"}]}}',
        ErrorBody("500", "Internal", None, None),
    ),
    (
        '{"error": {"code": "500", "details": [{"code": null, "message": "repo failed"}]}}',
        ErrorBody("500", "repo failed"),
    ),
    (
        '{"error": {"code": 404, "message": "not found", "requestID": "abc"}}',
        ErrorBody("404", "not found", "abc"),
    ),
    (
        '{"error": {"code": "x", "message": "m", "request_id": "snake"}}',
        ErrorBody("x", "m", "snake"),
    ),
    (
        '{"error": {"code": "x", "details": {"message": "from details object"}}}',
        ErrorBody("x", "from details object"),
    ),
    (
        '{"error": "unauthorized", "error_description": "Bad credentials"}',
        ErrorBody("unauthorized", "Bad credentials"),
    ),
    ('{"code": "01010076", "message": "unwrapped"}', ErrorBody("01010076", "unwrapped")),
    ("Unauthorized", ErrorBody(message="Unauthorized")),
    (
        "<html><body>502 Bad Gateway</body></html>",
        ErrorBody(message="<html><body>502 Bad Gateway</body></html>"),
    ),
    ("", ErrorBody()),
    ("[1, 2]", ErrorBody(message="[1, 2]")),
    ('{"error": 7}', ErrorBody(message='{"error": 7}')),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    BODY_CASES,
    ids=[
        "spec-shape",
        "details-list-snake-null",
        "message-from-details-list",
        "int-code-requestID",
        "request_id",
        "message-from-details-object",
        "oauth",
        "unwrapped",
        "plain-text",
        "html",
        "empty",
        "json-list",
        "error-not-object",
    ],
)
def test_parse_error_body_variants(text: str, expected: ErrorBody) -> None:
    assert parse_error_body(text) == expected


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, {"error": {"code": "01010076", "message": "cannot be changed"}}, Conflict),
        (400, {"error": {"code": "x", "message": "bad body"}}, InvalidRequest),
        (401, "Unauthorized", Unauthorized),
        (403, {"error": {"code": "403", "message": "forbidden"}}, Unauthorized),
        (404, {"error": {"code": "404", "message": "no such deployment"}}, NotFound),
        (409, {"error": {"code": "409", "message": "exists"}}, Conflict),
        (412, {"error": {"code": "412", "message": "precondition"}}, Conflict),
        (422, {"error": {"code": "x", "message": "y"}}, InvalidRequest),
        (429, "slow down", RateLimited),
        (500, {"error": {"code": "500", "message": "boom"}}, ServerError),
        (503, "", ServerError),
    ],
)
def test_status_mapping(status: int, body: object, cls: type[AICoreStatusError]) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    error = status_error("PATCH", "/v2/lm/deployments/d1", httpx.Response(status, text=text))
    assert type(error) is cls
    assert error.status == status and error.method == "PATCH"
    assert str(error).startswith(f"PATCH /v2/lm/deployments/d1 failed: HTTP {status}")
    assert error.retryable == (status == 429 or status >= 500)


def test_status_error_message_carries_code_message_request_id() -> None:
    response = httpx.Response(
        412,
        json={
            "error": {"code": "01010076", "message": "Current status RUNNING", "requestId": "r1"}
        },
    )
    error = status_error("DELETE", "/v2/lm/deployments/d1", response, retry_after=3.0)
    assert str(error) == (
        "DELETE /v2/lm/deployments/d1 failed: HTTP 412 [01010076]: Current status RUNNING "
        "(requestId r1)"
    )
    assert (error.code, error.message, error.request_id, error.retry_after) == (
        "01010076",
        "Current status RUNNING",
        "r1",
        3.0,
    )


def test_long_bodies_are_truncated_and_secrets_redacted() -> None:
    secret = "sekret-123456"
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    text = f"echo: client_secret={secret} Authorization: Bearer {jwt} " + "x" * 5000
    error = status_error("POST", "/v2/lm/artifacts", httpx.Response(502, text=text), secrets=[])
    message = str(error)
    assert secret not in message and jwt not in message
    assert len(error.message or "") <= 300
    known = status_error("GET", "/p", httpx.Response(500, text=f"{secret} here"), secrets=[secret])
    assert secret not in str(known)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("-4", 0.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("not a date", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = 1445412480.0  # 2015-10-21T07:28:00Z
    assert parse_retry_after(value, now) == expected


def test_backoff_is_exponential_capped_and_yields_to_retry_after() -> None:
    settings = RetrySettings(initial_backoff=0.5, backoff_factor=2, max_backoff=3, jitter=0)
    assert [backoff_delay(settings, n, None) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert backoff_delay(settings, 1, 7.0) == 7.0
    jittery = RetrySettings(initial_backoff=1, jitter=0.1)
    assert all(0.9 <= backoff_delay(jittery, 1, None) <= 1.1 for _ in range(50))
    with pytest.raises(ValueError, match="max_attempts"):
        RetrySettings(max_attempts=0)
