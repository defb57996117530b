"""The one serving probe: `POST {url}/embeddings` with a fixed short input, on one shared client.

Both backends and the CLI send their embedding requests through here, so connection reuse,
timeouts and the reading of the answer are the same everywhere. The verdict on the result is pure
(plan/serving_check.py `judge_serving`).

NB: one client for the operator's lifetime: building a client per check (TLS context included)
costs more CPU than the request itself once hundreds of models are checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from embedding_operator.plan.serving_check import CheckResult, first_embedding_size
from embedding_operator.redact import redact

#: Fixed input of the serving check: short, so the check costs the server next to nothing.
CHECK_INPUT = "embedding-operator serving check"
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


class Probe:
    """Sends serving checks; `await probe(url, model, headers)` → `CheckResult`, never raises.

    A connection that cannot be made at all (unresolvable cluster-local name, refused, TLS
    failure, connect timeout) is `reachable=False`; the caller's reachability policy decides
    whether that is a skip or a failure.
    """

    def __init__(self, timeout: float = 30.0) -> None:
        # NB: the connect timeout is short so an unreachable name costs seconds, not the full
        # budget a cold model may need to answer its first request.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
            # NB: idle connections expire before the common 5 s server keep-alive (uvicorn's,
            # so infinity's and the local AI Core's): at httpx's own 5 s a check could reuse a
            # connection the server was closing and fail with ReadError (2 of 500 in a bench).
            limits=httpx.Limits(
                max_connections=64, max_keepalive_connections=32, keepalive_expiry=2.0
            ),
        )

    async def __call__(
        self, url: str, model: str, headers: Mapping[str, str] | None = None
    ) -> CheckResult:
        target = f"{url}/embeddings"
        try:
            response = await self._http.post(
                target, json={"model": model, "input": [CHECK_INPUT]}, headers=dict(headers or {})
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as error:
            return CheckResult(
                reachable=False, error=f"{url} is not reachable ({_why(error)})", transient=True
            )
        except httpx.HTTPError as error:
            return CheckResult(
                reachable=True, error=f"POST {target}: {_why(error)}", transient=True
            )
        if response.status_code != 200:
            return CheckResult(
                reachable=True,
                error=f"POST {target} returned HTTP {response.status_code}: "
                # NB: redacted before the cut, so an echoed token never leaks in part.
                f"{' '.join(redact(response.text)[:300].split())}",
                transient=response.status_code in TRANSIENT_STATUSES,
            )
        try:
            body: Any = response.json()
            return CheckResult(reachable=True, dimensions=first_embedding_size(body))
        except ValueError as error:
            return CheckResult(
                reachable=True, error=f"POST {target} answered without an embedding ({error})"
            )

    async def aclose(self) -> None:
        await self._http.aclose()
