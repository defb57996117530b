"""Fault injection, switchable at run time through `POST /_emulator/faults` (docs/aicore-local.md).

HTTP faults (latency, 429 with Retry-After, 5xx, dropped connections) are applied by an ASGI
middleware in front of every route except `/_emulator/*`, filtered by a path regex. Lifecycle
faults (slow UNKNOWN/PENDING, the next starts going DEAD) are read by the deployment lifecycle.
A fault fires either for the next `count` matching requests or for a `rate` (fraction) of them;
the rate is deterministic (every 1/rate-th request) so tests can count on it.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

DEFAULT_PATH = "^/(v2|oauth)/"
RUNTIMES = ("process", "shared", "podman", "noop", "kserve")


class FaultSpecError(ValueError):
    """A malformed fault request; the message names the field."""


@dataclass
class Trigger:
    """Fires for the next `count` matches, or for a `rate` fraction of them (deterministic)."""

    count: int | None = None
    rate: float | None = None
    _acc: float = 0.0
    fired: int = 0

    def fire(self) -> bool:
        if self.count is not None:
            if self.count <= 0:
                return False
            self.count -= 1
        elif self.rate is not None:
            self._acc += self.rate
            if self._acc < 1.0:
                return False
            self._acc -= 1.0
        else:
            return False
        self.fired += 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.count <= 0

    def wire(self) -> dict[str, Any]:
        return {"count": self.count, "rate": self.rate, "fired": self.fired}


@dataclass
class HttpFault:
    kind: str  # rate_limit | server_error | drop_connection
    path: re.Pattern[str]
    trigger: Trigger
    status: int = 503
    retry_after: float = 1.0

    def wire(self) -> dict[str, Any]:
        out = {"path": self.path.pattern, **self.trigger.wire()}
        if self.kind == "rate_limit":
            out["retry_after"] = self.retry_after
        if self.kind == "server_error":
            out["status"] = self.status
        return out


@dataclass
class Faults:
    default_runtime: str = "process"
    runtime: str = "process"
    latency_s: float = 0.0
    latency_path: re.Pattern[str] = field(default_factory=lambda: re.compile(DEFAULT_PATH))
    http: dict[str, HttpFault] = field(default_factory=dict)
    pending_hold_s: float = 0.0
    unknown_hold_s: float = 0.0
    dead_next: Trigger = field(default_factory=Trigger)
    dead_message: str = "Injected fault: the predictor failed to start"

    def clear(self) -> None:
        self.runtime = self.default_runtime
        self.latency_s = 0.0
        self.latency_path = re.compile(DEFAULT_PATH)
        self.http.clear()
        self.pending_hold_s = 0.0
        self.unknown_hold_s = 0.0
        self.dead_next = Trigger()

    def take_dead(self) -> str | None:
        return self.dead_message if self.dead_next.fire() else None

    def wire(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "latency": {"seconds": self.latency_s, "path": self.latency_path.pattern},
            **{kind: f.wire() for kind, f in self.http.items()},
            "pending_seconds": self.pending_hold_s,
            "unknown_seconds": self.unknown_hold_s,
            "dead_next": {**self.dead_next.wire(), "message": self.dead_message},
        }

    def configure(self, body: dict[str, Any]) -> list[str]:
        """Apply the keys present in `body`; returns the one-shot actions requested."""
        known = {
            "latency",
            "rate_limit",
            "server_error",
            "drop_connection",
            "pending_seconds",
            "unknown_seconds",
            "dead_next",
            "runtime",
            "expire_tokens",
            "token_lifetime_seconds",
        }
        unknown = set(body) - known
        if unknown:
            raise FaultSpecError(
                f"unknown fault keys {sorted(unknown)}; known keys: {sorted(known)}"
            )
        actions: list[str] = []
        if "latency" in body:
            spec = _obj(body, "latency")
            self.latency_s = _num(spec, "latency", "seconds", 0.0)
            self.latency_path = _path(spec, "latency")
        for kind in ("rate_limit", "server_error", "drop_connection"):
            if kind not in body:
                continue
            if body[kind] is None:
                self.http.pop(kind, None)
                continue
            spec = _obj(body, kind)
            fault = HttpFault(kind, _path(spec, kind), _trigger(spec, kind))
            if kind == "rate_limit":
                fault.retry_after = _num(spec, kind, "retry_after", 1.0)
            if kind == "server_error":
                fault.status = int(_num(spec, kind, "status", 503))
                if not 500 <= fault.status <= 599:
                    raise FaultSpecError("server_error.status must be a 5xx status code")
            self.http[kind] = fault
        if "pending_seconds" in body:
            self.pending_hold_s = _num(body, "", "pending_seconds", 0.0)
        if "unknown_seconds" in body:
            self.unknown_hold_s = _num(body, "", "unknown_seconds", 0.0)
        if "dead_next" in body:
            spec = _obj(body, "dead_next")
            self.dead_next = _trigger(spec, "dead_next")
            self.dead_message = str(spec.get("message", self.dead_message))[:256]
        if "runtime" in body:
            if body["runtime"] not in RUNTIMES:
                raise FaultSpecError(f"runtime must be one of {list(RUNTIMES)}")
            self.runtime = str(body["runtime"])
        if body.get("expire_tokens"):
            actions.append("expire_tokens")
        if "token_lifetime_seconds" in body:
            actions.append("token_lifetime")
        return actions

    def pick_http(self, path: str) -> HttpFault | None:
        for kind in ("drop_connection", "server_error", "rate_limit"):
            fault = self.http.get(kind)
            if fault and fault.path.search(path) and fault.trigger.fire():
                return fault
        return None


def _obj(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body[key]
    if not isinstance(value, dict):
        raise FaultSpecError(f"{key} must be an object")
    return value


def _num(spec: dict[str, Any], where: str, key: str, default: float) -> float:
    value = spec.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise FaultSpecError(f"{where + '.' if where else ''}{key} must be a number >= 0")
    return float(value)


def _path(spec: dict[str, Any], where: str) -> re.Pattern[str]:
    try:
        return re.compile(str(spec.get("path", DEFAULT_PATH)))
    except re.error as exc:
        raise FaultSpecError(f"{where}.path is not a valid regex: {exc}") from exc


def _trigger(spec: dict[str, Any], where: str) -> Trigger:
    if "count" in spec and "rate" in spec:
        raise FaultSpecError(f"{where}: give either count or rate, not both")
    if "rate" in spec:
        rate = _num(spec, where, "rate", 0.0)
        if rate > 1:
            raise FaultSpecError(f"{where}.rate is a fraction between 0 and 1")
        return Trigger(rate=rate)
    return Trigger(count=int(_num(spec, where, "count", 1)))


class FaultMiddleware:
    """Applies HTTP faults before the request reaches routing."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        f = self.faults
        if f.latency_s > 0 and f.latency_path.search(path):
            await asyncio.sleep(f.latency_s)
        fault = f.pick_http(path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "drop_connection":
            # NB: headers go out, then the body stops short and the server closes the socket;
            # clients see an incomplete response ("peer closed connection").
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"trunc', "more_body": True})
        else:
            status = 429 if fault.kind == "rate_limit" else fault.status
            message = "Too many requests" if status == 429 else "Injected server error"
            body = json.dumps(
                {"error": {"code": str(status), "message": message, "target": path, "details": {}}}
            ).encode()
            headers = [(b"content-type", b"application/json")]
            if status == 429:
                # Retry-After is whole seconds (RFC 9110); round fractions up.
                headers.append((b"retry-after", str(math.ceil(fault.retry_after)).encode()))
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
