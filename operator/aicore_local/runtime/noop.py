"""Noop runtime: deployments reach RUNNING without any process (for scale tests).

The inference proxy answers 503 for such deployments; nothing pretends to embed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from .base import LogSink, Predictor, PredictorSpec


@dataclass
class NoopPredictor:
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str | None:
        return None

    async def wait_ready(self, within_s: float) -> None:
        return None

    async def wait_exit(self) -> int | None:
        await self._stopped.wait()
        return 0

    async def stop(self) -> None:
        self._stopped.set()


@dataclass
class NoopRuntime:
    name: str = "noop"
    copies_model: bool = False  # NB: nothing reads it; scale tests would copy it per deployment

    async def start(self, spec: PredictorSpec, log: LogSink) -> Predictor:
        log("noop runtime: no predictor process is started", "stdout")
        return NoopPredictor()
