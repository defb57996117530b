"""Which failures are outages (retry quietly) and which are bugs (log the traceback).

An API server or AI Core that is down, restarting or overloaded makes every object fail the same
way at the same time; a traceback per object per retry buries the one line that matters (issue
15: 1,080 tracebacks in a 150 s outage of 45 models). So an outage is logged once per object
when it starts and once when it ends, and a traceback is kept for what no outage explains.
"""

from __future__ import annotations

import asyncio

import httpx
import httpx2  # lightkube's HTTP client: its own error classes
from lightkube.core.exceptions import ApiError

# NB: 409 is a concurrent writer, 429 and 5xx an overloaded or restarting server.
_RETRIED_STATUS = {409, 429, 500, 502, 503, 504}


def is_transient(error: BaseException) -> bool:
    """True for connection failures, timeouts and retryable HTTP statuses."""
    if isinstance(error, httpx.TransportError | httpx2.TransportError):
        return True
    if isinstance(error, TimeoutError | asyncio.TimeoutError | ConnectionError):
        return True
    if isinstance(error, ApiError):
        return error.status.code in _RETRIED_STATUS
    if isinstance(error, httpx.HTTPStatusError | httpx2.HTTPStatusError):
        return error.response.status_code in _RETRIED_STATUS
    return False


def describe(error: BaseException) -> str:
    """One line, e.g. 'ConnectError: [Errno 111] Connection refused'."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
