"""XSUAA client-credentials token cache for the AI Core client.

The cache owns *when* to fetch a token; the client owns *how* (its ``_request`` choke point, so
the token call gets the same timeouts, retries and metrics). A token is refreshed

- proactively, once ``refresh_after(expires_in)`` seconds have passed since it was issued, and
- once per failing call, when the API answers 401 (the client calls ``invalidate``).

NB: the official SDK refreshes when less than 60 minutes remain, i.e. on *every* call for tokens
that live an hour or less (reference/aicore-api.md §1.2). We refresh at
``min(0.9 * expires_in, expires_in - 300)`` as the reference recommends, but never earlier than
half the lifetime, so short-lived tokens (tests, fault injection) are still reused.

Token values never appear in a repr; ``recent_tokens`` exists only so error messages can be
redacted against them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

TokenFetcher = Callable[[], Awaitable[tuple[str, float]]]
"""Fetches a new token; returns ``(access_token, expires_in_seconds)``."""


def refresh_after(expires_in: float) -> float:
    """Seconds after issue at which a token with lifetime ``expires_in`` should be replaced."""
    return max(min(expires_in * 0.9, expires_in - 300.0), expires_in * 0.5)


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    issued_at: float
    refresh_at: float


class TokenCache:
    """Single-flight cache: concurrent callers share one fetch."""

    def __init__(self, fetch: TokenFetcher, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self._recent: deque[str] = deque(maxlen=4)

    def __repr__(self) -> str:
        state = "empty" if self._token is None else "cached"
        return f"<TokenCache {state}>"

    def _valid(self) -> Token | None:
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token
        return None

    async def get(self) -> str:
        """A token valid for a while yet, fetching one if needed."""
        token = self._valid()
        if token is not None:
            return token.value
        async with self._lock:
            token = self._valid()  # another task may have fetched it while we waited
            if token is None:
                issued = self._clock()
                value, expires_in = await self._fetch()
                token = Token(value, issued, issued + refresh_after(expires_in))
                self._token = token
                self._recent.append(value)
            return token.value

    def invalidate(self, value: str) -> None:
        """Drop ``value`` if it is still the cached token (it was just refused with a 401)."""
        if self._token is not None and self._token.value == value:
            self._token = None

    def recent_tokens(self) -> Iterator[str]:
        """The last few token values, for redaction only."""
        return iter(tuple(self._recent))
