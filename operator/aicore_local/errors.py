"""The AI Core error body and the exception that carries it through the handlers.

Every non-2xx answer of the real API is `{"error": {code, message, requestId, target, details}}`
(spec `AiApiError`); the official SDK raises as soon as it sees a dict with an `error` key and picks
its exception class from the HTTP status, so status and shape both matter here.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.responses import JSONResponse

# NB: the only documented real code for a state conflict (help: Deployment troubleshooting).
STATE_CONFLICT_CODE = "01010076"


class ApiError(Exception):
    """An API failure that becomes an AI Core error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or str(status)
        self.details = details or {}
        self.headers = headers or {}

    def response(self, target: str) -> JSONResponse:
        return error_response(
            self.status,
            self.message,
            target=target,
            code=self.code,
            details=self.details,
            headers=self.headers,
        )


def error_response(
    status: int,
    message: str,
    *,
    target: str,
    code: str | None = None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "code": code or str(status),
            "message": message,
            "requestId": str(uuid.uuid4()),
            "target": target,
            "details": details or {},
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def bad_request(message: str, **details: Any) -> ApiError:
    return ApiError(400, message, details=details or None)


def not_found(kind: str, ident: str) -> ApiError:
    return ApiError(404, f"{kind} '{ident}' not found", code="NotFound")
