"""The AI Core client's error tree, and the tolerant parser for AI Core error bodies.

Every failure of an AI Core call surfaces as one of these (raised only from the client's
``_request`` choke point, with the httpx error chained via ``from``)::

    AICoreError                     any failure talking to AI Core (or its XSUAA)
    ├── ServiceKeyError             the service key is unusable: the user must fix it
    ├── AICoreRequestError          no HTTP response: connect error, timeout, dropped connection
    │                               (retryable)
    ├── AICoreResponseError         a 2xx whose body does not parse: a contract mismatch
    └── AICoreStatusError           an HTTP error response; carries method, path, status, AI Core
        │                           code, message, requestId, and Retry-After when given
        ├── Unauthorized            401/403 (after one token refresh), or XSUAA refused the key
        ├── NotFound                404
        ├── Conflict                409, 412, or AI Core's state-conflict code 01010076:
        │                           "not allowed in the deployment's current state"
        ├── InvalidRequest          other 4xx (mostly 400: a body AI Core would not accept)
        ├── RateLimited             429 that outlived the retries (retryable)
        └── ServerError             5xx (retryable)

``retryable`` on each class tells the caller (the operator backend) whether requeueing can help;
``retry_after`` carries the server's hint in seconds when it sent one.

NB: AI Core's error bodies are not uniform (reference/aicore-api.md §2): ``details`` is an object or
a list, the request id is spelled ``requestId``, ``request_id`` or ``requestID``, gateways answer
with plain text or HTML, and XSUAA uses OAuth's ``{"error": "...", "error_description": "..."}``.
``parse_error_body`` accepts all of them and never fails.

Messages are passed through the operator's one redactor (``embedding_operator.redact``), then cut
to ``MAX_MESSAGE_CHARS``, so neither tokens nor the client secret can reach a log line, an Event or
a status condition.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from embedding_operator.redact import redact

MAX_MESSAGE_CHARS = 300
"""Longest server message kept in an exception (bodies can be whole HTML pages)."""

STATE_CONFLICT_CODE = "01010076"
"""AI Core's code for "Current status X cannot be changed" (reference §3.5)."""


def truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    text = " ".join(text.split())  # one line: bodies may be pretty-printed JSON or HTML
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class ErrorBody:
    """What could be read from an error response body; every field may be missing."""

    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    target: str | None = None


def _opt_str(value: object) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _first_detail_message(details: object) -> str | None:
    if isinstance(details, dict):
        details = [details]
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and isinstance(item.get("message"), str) and item["message"]:
                return str(item["message"])
    return None


def parse_error_body(text: str) -> ErrorBody:
    """Read an AI Core / XSUAA / gateway error body; never raises."""
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return ErrorBody(message=text.strip() or None)
    error = data.get("error", data)
    if isinstance(error, str):
        # OAuth (XSUAA): {"error": "unauthorized", "error_description": "Bad credentials"}
        description = _opt_str(data.get("error_description"))
        return ErrorBody(code=error, message=description or error)
    if not isinstance(error, dict):
        return ErrorBody(message=truncate(text))
    request_id = next(
        (
            _opt_str(error.get(k))
            for k in ("requestId", "request_id", "requestID")
            if error.get(k) is not None
        ),
        None,
    )
    message = _opt_str(error.get("message")) or _first_detail_message(error.get("details"))
    return ErrorBody(
        code=_opt_str(error.get("code")),
        message=message,
        request_id=request_id,
        target=_opt_str(error.get("target")),
    )


class AICoreError(Exception):
    """Base of every error raised by the AI Core client."""

    retryable: bool = False
    retry_after: float | None = None


class ServiceKeyError(AICoreError, ValueError):
    """The service key is missing, malformed or of an unsupported kind. Never echoes values."""


class AICoreRequestError(AICoreError):
    """No usable HTTP response: connection refused or dropped, timeout, protocol error."""

    retryable = True

    def __init__(self, method: str, path: str, reason: str) -> None:
        self.method = method
        self.path = path
        self.reason = reason
        super().__init__(f"{method} {path} failed without a response: {reason}")


class AICoreResponseError(AICoreError):
    """A success response whose body this client cannot read (not retryable)."""


class AICoreStatusError(AICoreError):
    """AI Core (or XSUAA) answered with an error status."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        body: ErrorBody,
        *,
        retry_after: float | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.code = body.code
        self.message = body.message
        self.request_id = body.request_id
        self.retry_after = retry_after
        text = f"{method} {path} failed: HTTP {status}"
        if body.code:
            text += f" [{body.code}]"
        if body.message:
            text += f": {body.message}"
        if body.request_id:
            text += f" (requestId {body.request_id})"
        super().__init__(text)


class Unauthorized(AICoreStatusError):
    """401/403 even after a fresh token, or XSUAA rejected the client credentials."""


class NotFound(AICoreStatusError):
    """404: the object (or the path) does not exist."""


class Conflict(AICoreStatusError):
    """409/412 or code 01010076: the request is not allowed in the object's current state."""


class InvalidRequest(AICoreStatusError):
    """Another 4xx, usually 400: AI Core rejected the request body or parameters."""


class RateLimited(AICoreStatusError):
    """429 that persisted through the retries (or asked for a longer wait than we block for)."""

    retryable = True


class ServerError(AICoreStatusError):
    """5xx from AI Core or its gateway."""

    retryable = True


def status_error(
    method: str,
    path: str,
    response: httpx.Response,
    *,
    secrets: Iterable[str] = (),
    retry_after: float | None = None,
) -> AICoreStatusError:
    """Map an error response to the most specific class, with a truncated, redacted message."""
    raw = parse_error_body(response.text)
    body = ErrorBody(
        code=raw.code,
        message=truncate(redact(raw.message, secrets)) if raw.message else None,
        request_id=raw.request_id,
        target=raw.target,
    )
    status = response.status_code
    cls: type[AICoreStatusError]
    if status in (401, 403):
        cls = Unauthorized
    elif status in (409, 412) or body.code == STATE_CONFLICT_CODE:
        cls = Conflict
    elif status == 404:
        cls = NotFound
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = ServerError
    else:
        cls = InvalidRequest
    return cls(method, path, status, body, retry_after=retry_after)
